import type { Alert } from '@gpupulse/protocol';
import { storeToRefs } from 'pinia';
import { useI18n } from 'vue-i18n';
import { isKnownRule } from '../lib/alerts.ts';
import { formatCelsius, formatDuration, formatNumber } from '../lib/format.ts';
import { visibleAlertMessage } from '../lib/privacy.ts';
import { usePreferencesStore } from '../stores/preferences.ts';

type Translate = (key: string, params?: Record<string, unknown>) => string;

/**
 * Localized one-line text of an alert, built from its rule and values (the server's message is
 * English free text: shown only for rules we don't know, and never in privacy mode). A resolved
 * alert says so, with the peak it reached and its threshold: never a reading that sounds current.
 */
export function alertText(alert: Alert, t: Translate, locale: string, privacy: boolean): string {
  const value = (v: number | null): string => {
    if (v === null) return '—';
    if (alert.rule.includes('temperature')) return formatCelsius(locale, v);
    if (alert.rule === 'gpu_idle_held') return formatDuration(locale, v * 1000); // seconds
    return formatNumber(locale, v);
  };
  if (alert.state === 'resolved' && isKnownRule(alert.rule)) {
    const title = t(`alerts.titles.${alert.rule}`);
    const peak = alert.peak ?? alert.value;
    if (peak === null || peak === undefined || alert.rule === 'node_offline' || alert.rule === 'gpu_stale')
      return t('alerts.resolvedPlain', { title });
    if (alert.threshold === null) return t('alerts.resolvedValue', { title, peak: value(peak) });
    return t('alerts.resolvedPeak', { title, peak: value(peak), threshold: value(alert.threshold) });
  }
  if (isKnownRule(alert.rule))
    return t(`alerts.rules.${alert.rule}`, { value: value(alert.value), threshold: value(alert.threshold) });
  return visibleAlertMessage(alert.message, privacy) ?? alert.rule;
}

export function useAlertText() {
  const { t, locale } = useI18n();
  const { privacy } = storeToRefs(usePreferencesStore());

  const text = (alert: Alert): string => alertText(alert, t, locale.value, privacy.value);

  function subject(alert: Alert): string {
    return alert.gpuIndex === null
      ? alert.node
      : `${alert.node} · ${t('alerts.gpu', { index: alert.gpuIndex })}`;
  }

  return { text, subject };
}

/** A distinct shape per severity (colour is never the only cue). */
export const SEVERITY_ICON = { critical: '✖', warning: '▲', info: '●' } as const;
