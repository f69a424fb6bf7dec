import '../styles/kiosk.css';
import { storeToRefs } from 'pinia';
import { onScopeDispose, watch } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { msUntilNext, nextRotationPath, ROTATION_PATHS } from '../lib/rotation.ts';
import { usePreferencesStore } from '../stores/preferences.ts';

export interface UseKioskOptions {
  /** Views to rotate through (default wall → projects → trends). */
  paths?: readonly string[];
}

/**
 * Kiosk rotation (`?kiosk=1&rotate=30`): shows each view for the given seconds, then the next,
 * keeping the query (kiosk, privacy, token …) on every hop. The timer restarts whenever the
 * route changes, so a manual navigation gets its full time. Call once (App.vue).
 */
export function useKiosk(options: UseKioskOptions = {}) {
  const prefs = usePreferencesStore();
  const { rotateSeconds } = storeToRefs(prefs);
  const route = useRoute();
  const router = useRouter();
  const paths = options.paths ?? ROTATION_PATHS;
  let timer: ReturnType<typeof setTimeout> | null = null;

  function schedule(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    const seconds = rotateSeconds.value;
    if (!seconds) return;
    const shownAt = Date.now();
    timer = setTimeout(
      () => {
        timer = null;
        const next = nextRotationPath(route.path, paths);
        router.push({ path: next, query: route.query }).catch(() => schedule());
      },
      msUntilNext(shownAt, Date.now(), seconds),
    );
  }

  watch([() => route.fullPath, rotateSeconds], schedule, { immediate: true });
  onScopeDispose(() => {
    if (timer) clearTimeout(timer);
  });
}
