import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * On whose behalf outbound calls are made, carried through async calls so the clients
 * need no extra parameter: the worker sets it for a batch of jobs keyed `order:<id>`,
 * and the domain narrows it to one order where it works order by order. A call counts
 * for an order only when it was made for that order alone (a batched create of 50 deals
 * is for none of them in particular).
 */
const storage = new AsyncLocalStorage<{ orderIds: readonly string[] }>();

export function onBehalfOf<T>(orderIds: readonly string[], fn: () => T): T {
  return storage.run({ orderIds: [...new Set(orderIds)] }, fn);
}

/** The order the current call is for, when it is for exactly one. */
export function currentOrderId(): string | null {
  const ids = storage.getStore()?.orderIds;
  return ids?.length === 1 ? ids[0]! : null;
}
