/**
 * Where no `beforeinstallprompt` comes, installing is a menu the user must find: say which.
 * Pure, so tests/ui-shell checks it against real user agents.
 */

export type InstallHint =
  | 'ios-share' // iPhone/iPad (every iOS browser since 16.4): Share → Add to Home Screen
  | 'macos-safari-dock' // Safari 17+ on a Mac: File → Add to Dock
  | 'none';

export interface InstallEnvironment {
  readonly userAgent: string;
  /** iPadOS reports a Mac user agent; touch points tell them apart. */
  readonly maxTouchPoints: number;
  readonly standalone: boolean;
}

/** Safari on macOS learned "Add to Dock" in version 17. */
const MIN_SAFARI_DOCK_VERSION = 17;

export function installHintFor(env: InstallEnvironment): InstallHint {
  if (env.standalone) return 'none';
  const ua = env.userAgent;
  const iPadOnMacAgent = /Macintosh/.test(ua) && env.maxTouchPoints > 1;
  if (/iPhone|iPad|iPod/.test(ua) || iPadOnMacAgent) return 'ios-share';
  const safari = /Macintosh/.test(ua) && /Safari\//.test(ua) && !/Chrome\/|Chromium\/|Edg\/|Firefox\/|OPR\//.test(ua);
  const version = /Version\/(\d+)/.exec(ua)?.[1];
  if (safari && version !== undefined && Number(version) >= MIN_SAFARI_DOCK_VERSION) return 'macos-safari-dock';
  return 'none';
}
