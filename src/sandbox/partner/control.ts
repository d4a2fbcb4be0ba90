import express, { type Router } from 'express';
import { z } from 'zod';
import { customerSchema } from '../../partner/schema.js';
import type { PartnerSimulator } from './index.js';

/**
 * Operator controls for the standalone simulator (tests use the object API instead):
 * play a user ordering in the Company 1 app, move the clock, turn faults on and off.
 * Not part of the Company 1 contract, so it lives under /_sim.
 */
const userOrderSchema = z.object({
  userId: z.string().min(1),
  serviceId: z.string().min(1).optional(),
  customer: customerSchema,
});
const clockSchema = z.object({ advanceMs: z.number().nonnegative() });
const faultsSchema = z
  .object({
    latencyMs: z.number().nonnegative(),
    errorRate: z.number().min(0).max(1),
    outage: z.boolean(),
    hang: z.boolean(),
  })
  .partial()
  .strict();

export function controlRouter(sim: PartnerSimulator): Router {
  const router = express.Router();
  router.use(express.json());

  router.post('/orders', async (req, res) => {
    const parsed = userOrderSchema.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: z.prettifyError(parsed.error) });
    const order = await sim.createOrderAsUser(parsed.data);
    res.status(201).json({ order, delivery: sim.deliveries.at(-1) });
  });

  router.post('/clock', async (req, res) => {
    const parsed = clockSchema.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: z.prettifyError(parsed.error) });
    const before = sim.deliveries.length;
    await sim.advanceClock(parsed.data.advanceMs);
    res.json({ deliveries: sim.deliveries.slice(before) });
  });

  router.patch('/faults', (req, res) => {
    const parsed = faultsSchema.safeParse(req.body);
    if (!parsed.success) return void res.status(400).json({ error: z.prettifyError(parsed.error) });
    Object.assign(sim.faults, parsed.data);
    res.json(sim.faults);
  });

  router.get('/deliveries', (_req, res) => {
    res.json({ items: sim.deliveries });
  });

  return router;
}
