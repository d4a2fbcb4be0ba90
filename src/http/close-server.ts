import type { Server } from 'node:http';

/**
 * Stops accepting connections and resolves once the open ones are gone: idle keep-alive
 * sockets are closed at once, requests under way may finish within `graceMs`, then their
 * sockets are cut.
 */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}
