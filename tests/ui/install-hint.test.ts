/** Which install instructions each browser gets (src/ui/shell/install-hint.ts), on real user agents. */
import { describe, expect, test } from 'vitest';
import { installHintFor } from '../../src/ui/shell/install-hint.js';

const UA = {
  iphoneSafari: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  iphoneChrome: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1',
  // iPadOS asks for desktop sites: a Mac user agent, told apart by its touch points.
  ipadDesktopMode: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  macSafari17: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  macSafari16: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15',
  macChrome: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  macFirefox: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0',
  androidChrome: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  linuxFirefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
} as const;

describe('installHintFor', () => {
  test('every iOS browser, and iPadOS in desktop mode, gets Share → Add to Home Screen', () => {
    expect(installHintFor({ userAgent: UA.iphoneSafari, maxTouchPoints: 5, standalone: false })).toBe('ios-share');
    expect(installHintFor({ userAgent: UA.iphoneChrome, maxTouchPoints: 5, standalone: false })).toBe('ios-share');
    expect(installHintFor({ userAgent: UA.ipadDesktopMode, maxTouchPoints: 5, standalone: false })).toBe('ios-share');
  });

  test('Safari 17+ on a Mac gets File → Add to Dock; older Safari and other Mac browsers get nothing', () => {
    expect(installHintFor({ userAgent: UA.macSafari17, maxTouchPoints: 0, standalone: false })).toBe('macos-safari-dock');
    expect(installHintFor({ userAgent: UA.macSafari16, maxTouchPoints: 0, standalone: false })).toBe('none');
    expect(installHintFor({ userAgent: UA.macChrome, maxTouchPoints: 0, standalone: false })).toBe('none');
    expect(installHintFor({ userAgent: UA.macFirefox, maxTouchPoints: 0, standalone: false })).toBe('none');
  });

  test('browsers with their own install offer (or none at all) get no instructions', () => {
    expect(installHintFor({ userAgent: UA.androidChrome, maxTouchPoints: 5, standalone: false })).toBe('none');
    expect(installHintFor({ userAgent: UA.linuxFirefox, maxTouchPoints: 0, standalone: false })).toBe('none');
  });

  test('nothing once running installed', () => {
    expect(installHintFor({ userAgent: UA.iphoneSafari, maxTouchPoints: 5, standalone: true })).toBe('none');
    expect(installHintFor({ userAgent: UA.macSafari17, maxTouchPoints: 0, standalone: true })).toBe('none');
  });
});
