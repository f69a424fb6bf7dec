/** English messages of nudges (GPU page, My work): top-level key `nudges`, spread into `en.ts`. */
export const enNudges = {
  nudges: {
    title: 'Nudges',
    summary: '{user} was nudged at {time} about {gpu}',
    summaryYou: 'You were nudged at {time} about {gpu}',
    snoozedUntil: '; snoozed until {until}',
    escalated: '; the project lead was told',
    kinds: {
      nudge: '{time}: {user} was nudged about {gpu}',
      snooze: '{time}: {user} is still using {gpu}: snoozed until {until}',
      escalation: "{time}: the project lead was told about {user}'s idle {gpu}",
      ops: '{time}: ops were alerted about {gpu}',
      resolved: '{time}: {gpu} no longer idle ({minutes} min after the nudge)',
    },
    emailNotConfigured: 'e-mail not configured',
    noAddress: 'no e-mail address',
    emailFailed: 'e-mail failed',
  },
};
