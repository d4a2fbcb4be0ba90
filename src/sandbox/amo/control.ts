import express, { type Router } from 'express';
import { z } from 'zod';
import type { AmoSimulator } from './index.js';
import { sendProblem } from './problem.js';

/**
 * Operator controls for the standalone simulator (tests use the object API instead): see
 * the deals and move one as a manager does in amoCRM's UI, which fires the webhooks the
 * account is subscribed to. Not part of amoCRM's API, so it lives under /_sim.
 */
const moveSchema = z
  .object({
    /** A stage name of the deal's pipeline, e.g. "Payment received", "Closed - won". */
    stage: z.string().min(1),
    price: z.number().int().nonnegative().optional(),
  })
  .strict();

export function controlRouter(sim: AmoSimulator): Router {
  const router = express.Router();
  router.use(express.json());

  router.get('/leads', (_req, res) => {
    const leads = [...sim.state.leads.values()]
      .filter((l) => !l.is_deleted)
      .map((l) => ({ id: l.id, name: l.name, price: l.price, stage: sim.statusNameById(l.status_id, l.pipeline_id), statusId: l.status_id, pipelineId: l.pipeline_id }));
    res.json({ items: leads });
  });

  router.post('/leads/:id/move', async (req, res) => {
    const id = Number(req.params.id);
    const lead = sim.state.leads.get(id);
    if (!lead || lead.is_deleted) return sendProblem(res, 404, `No deal ${req.params.id}`);
    const parsed = moveSchema.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 400, z.prettifyError(parsed.error));
    const before = sim.state.deliveries.length;
    try {
      await sim.moveLead(id, { statusName: parsed.data.stage }, { price: parsed.data.price });
    } catch (error) {
      return sendProblem(res, 400, error instanceof Error ? error.message : String(error));
    }
    const moved = sim.state.leads.get(id)!;
    res.json({
      lead: { id, stage: sim.statusNameById(moved.status_id, moved.pipeline_id), statusId: moved.status_id, price: moved.price },
      deliveries: sim.state.deliveries.slice(before).map((d) => ({ destination: d.destination, events: d.events, status: d.status, error: d.error })),
    });
  });

  return router;
}
