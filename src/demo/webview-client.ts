/**
 * Just enough of a browser for the demo to use the webview over HTTP: it keeps the
 * cookies the bridge sets (session, CSRF), does not follow redirects (the demo reads
 * them), and finds a form's hidden fields (the CSRF token, the new-order nonce).
 */
export class WebviewClient {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly baseUrl: string) {}

  async get(pathOrUrl: string): Promise<Page> {
    return this.send('GET', pathOrUrl);
  }

  async post(path: string, form: Record<string, string>): Promise<Page> {
    return this.send('POST', path, new URLSearchParams(form).toString());
  }

  private async send(method: string, pathOrUrl: string, body?: string): Promise<Page> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      body,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      if (at > 0) this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return new Page(res.status, res.headers.get('location'), await res.text());
  }
}

export class Page {
  constructor(
    readonly status: number,
    readonly location: string | null,
    readonly html: string,
  ) {}

  /** The value of the hidden input `name`; throws when the page has none. */
  hidden(name: string): string {
    const match = new RegExp(`<input[^>]*type="hidden"[^>]*name="${name}"[^>]*value="([^"]*)"`).exec(this.html)
      ?? new RegExp(`<input[^>]*name="${name}"[^>]*type="hidden"[^>]*value="([^"]*)"`).exec(this.html);
    if (!match) throw new Error(`the page (HTTP ${this.status}) has no hidden field ${name}`);
    return match[1]!;
  }

  /** Expects a redirect and answers where to. */
  redirect(): string {
    if (this.status !== 303 && this.status !== 302) throw new Error(`expected a redirect, got HTTP ${this.status}`);
    return this.location!;
  }
}
