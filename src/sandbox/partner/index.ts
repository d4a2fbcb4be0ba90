import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { createOrderRequestSchema, type Customer, type Order } from '../../partner/schema.js';
import { createFaults, createStats, injectFaults, recordRequests, type PartnerFaults, type PartnerStats } from './faults.js';
import { OrderBook } from './orders.js';
import { errorHandler, notFoundHandler, ordersRouter, requireBearer } from './routes.js';
import { WebhookSender, type SendWebhookOptions, type WebhookDelivery, type WebhookType } from './webhooks.js';

/**
 * A simulator of Company 1 (the partner order system), faithful to the contract in
 * docs/contracts.md: the integration API the bridge calls, the signed order webhooks it
 * receives, the stage-1 auto-close, and faults to inject. Used by tests and the demo.
 */

export const DEFAULT_PARTNER_API_TOKEN = 'partner-sim-token';
/** A fixed, well-known test secret (base64 of "amobridge-partner-simulator-key!"). */
export const DEFAULT_PARTNER_WEBHOOK_SECRET = 'whsec_YW1vYnJpZGdlLXBhcnRuZXItc2ltdWxhdG9yLWtleSE=';
const FOUR_HOURS_MS = 4 * 60 * 60 * 1000;

export interface PartnerSimulatorOptions {
  /** Bearer token the API requires; default 'partner-sim-token'. */
  apiToken?: string;
  /** 'whsec_<base64>' used to sign webhooks to the bridge; default DEFAULT_PARTNER_WEBHOOK_SECRET. */
  webhookSecret?: string;
  /** Where order webhooks go (can be set later via setBridgeWebhookUrl). */
  bridgeWebhookUrl?: string;
  /** Stage 1: Company 1 closes orders itself after this long; default 4 h. */
  autoCloseAfterMs?: number;
  /** Default true (stage 1); false from stage 2. */
  autoClose?: boolean;
  /**
   * Also send order.created / order.updated for changes made through the API (POST, PATCH),
   * as a real system might echo them; default false. Sent without delaying the answer.
   */
  notifyApiChanges?: boolean;
  /** Clock; default Date.now. advanceClock adds to whatever it returns. */
  now?: () => number;
}

export interface PartnerSimulator {
  app: Express;
  /** Listens on 127.0.0.1 (port 0 = any free port) and returns the base URL. */
  listen(port?: number): Promise<string>;
  close(): Promise<void>;
  /** The live store; tests may read or seed it. */
  orders: Map<string, Order>;
  setBridgeWebhookUrl(url: string): void;
  /**
   * A user orders in the Company 1 app: the order is stored in status on_approval and,
   * unless send is false, delivered as a signed order.created webhook (awaited; see deliveries).
   */
  createOrderAsUser(
    input: { userId: string; serviceId?: string; customer: Customer },
    opts?: { send?: boolean },
  ): Promise<Order>;
  /** One signed Standard Webhooks delivery; tests use it to replay or forge. Never throws. */
  sendWebhook(type: WebhookType, order: Order, opts?: SendWebhookOptions): Promise<{ status: number; body: string }>;
  /** Moves the simulated clock, then auto-closes expired orders (when on) and awaits their webhooks. */
  advanceClock(ms: number): Promise<void>;
  setAutoClose(on: boolean): void;
  faults: PartnerFaults;
  stats: PartnerStats;
  deliveries: WebhookDelivery[];
}

export function createPartnerSimulator(options: PartnerSimulatorOptions = {}): PartnerSimulator {
  const baseNow = options.now ?? Date.now;
  let clockOffset = 0;
  const clock = () => baseNow() + clockOffset;
  const autoCloseAfterMs = options.autoCloseAfterMs ?? FOUR_HOURS_MS;
  let autoClose = options.autoClose ?? true;

  const book = new OrderBook(clock);
  const webhooks = new WebhookSender(options.webhookSecret ?? DEFAULT_PARTNER_WEBHOOK_SECRET, options.bridgeWebhookUrl, clock);
  const faults = createFaults();
  const stats = createStats();

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // every GET answers the current state; no 304 surprises for clients
  app.use(recordRequests(stats));
  app.use(express.json({ limit: '100kb' }));
  app.use(injectFaults(faults, (id) => book.get(id)));
  app.use(requireBearer(options.apiToken ?? DEFAULT_PARTNER_API_TOKEN));
  app.use(
    ordersRouter({
      book,
      onChange: options.notifyApiChanges
        ? (type, order) => void webhooks.send(type, order) // send() never rejects
        : undefined,
    }),
  );
  app.use(notFoundHandler);
  app.use(errorHandler);

  let server: Server | undefined;

  return {
    app,
    orders: book.orders,
    faults,
    stats,
    deliveries: webhooks.deliveries,

    listen(port = 0) {
      if (server) return Promise.reject(new Error('partner simulator is already listening'));
      return new Promise<string>((resolve, reject) => {
        const s = app.listen(port, '127.0.0.1', (error?: Error) => {
          if (error) return reject(error);
          resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
        });
        server = s;
      });
    },

    async close() {
      const s = server;
      server = undefined;
      if (!s) return;
      // Requests held open by the `hang` fault would otherwise keep close() waiting forever.
      s.closeAllConnections();
      await new Promise<void>((resolve, reject) => s.close((error) => (error ? reject(error) : resolve())));
    },

    setBridgeWebhookUrl(url) {
      webhooks.url = url;
    },

    async createOrderAsUser(input, opts = {}) {
      const request = createOrderRequestSchema.parse({ serviceId: 'trial-lesson', ...input });
      const order = book.create({ userId: request.userId, serviceId: request.serviceId, customer: request.customer });
      if (opts.send ?? true) await webhooks.send('order.created', order);
      return order;
    },

    sendWebhook(type, order, opts) {
      return webhooks.send(type, order, opts);
    },

    async advanceClock(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advanceClock takes a non-negative number of ms');
      clockOffset += ms;
      if (!autoClose) return;
      // One at a time, in store order: deterministic for tests, like a real sender's queue.
      for (const order of book.closeExpired(autoCloseAfterMs)) {
        await webhooks.send('order.updated', order);
      }
    },

    setAutoClose(on) {
      autoClose = on;
    },
  };
}

export type { PartnerFaults, PartnerStats, RecordedRequest } from './faults.js';
export type { SendWebhookOptions, WebhookDelivery, WebhookType } from './webhooks.js';
