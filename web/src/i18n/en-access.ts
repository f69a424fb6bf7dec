/**
 * English messages of sign-in and roles (top-level key `access`), spread into `en.ts`.
 */
export const enAccess = {
  access: {
    label: 'Signed in as',
    identity: '{name} ({role})',
    anonymous: 'Not signed in ({role})',
    signIn: 'Sign in',
    signOut: 'Sign out',
    roles: { none: 'no access', display: 'display', viewer: 'viewer', admin: 'admin' },
    signInForPeople: 'Sign in to see users and processes.',
    peopleHidden: 'Users and processes are not shown to the {role} role.',
    commandHidden: "command line hidden: another user's process",
    screen: {
      title: 'Sign-in needed',
      body: 'This dashboard shows nothing without signing in.',
      noLogin:
        'Ask the administrators for access (an account with a role, or a token link for a wall display).',
      refused: 'The server said: {message}',
    },
  },
} as const;
