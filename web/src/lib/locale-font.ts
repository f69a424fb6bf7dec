/**
 * The self-hosted Korean webfont (`@fontsource/noto-sans-kr`, SIL OFL): loaded only when the
 * page is in Korean, so an English wall never fetches it. Its CSS splits the font into
 * `unicode-range` slices: the browser downloads only the slices the page's text uses. Files are
 * served by the dashboard itself (`font-src 'self'`), so a machine without Korean fonts shows
 * the same glyphs as any other (screenshots in CI included).
 */
let korean: Promise<unknown> | null = null;

export function loadLocaleFont(locale: string): Promise<unknown> {
  if (locale !== 'ko') return Promise.resolve();
  korean ??= Promise.all([
    import('@fontsource/noto-sans-kr/400.css'),
    import('@fontsource/noto-sans-kr/700.css'),
  ]).catch(() => {
    korean = null; // a failed chunk load is tried again on the next switch
  });
  return korean;
}
