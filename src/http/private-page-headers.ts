import type { RequestHandler } from 'express';

/**
 * The headers of every server-rendered page (the webview, the admin page): a strict
 * Content-Security-Policy (own styles, and own script where `script` is set; no framing;
 * forms post home), no MIME sniffing, no referrer, and never kept by a browser cache or a
 * proxy, since the pages show personal and operational data.
 */
export function privatePageHeaders(options: { script: boolean }): RequestHandler {
  const csp = [
    "default-src 'none'",
    "style-src 'self'",
    ...(options.script ? ["script-src 'self'"] : []),
    "img-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return (_req, res, next) => {
    res.set({ 'Content-Security-Policy': csp, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Cache-Control': 'no-store' });
    next();
  };
}
