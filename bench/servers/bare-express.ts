import express from 'express';

/**
 * The ingest baseline: a bare express 5 handler that parses the same JSON body (same
 * size limit as the bridge's route) and answers 202 with the same small JSON. No
 * signature check, no validation, no storage, no logging. Prints LISTENING <url>.
 */
const app = express();
app.disable('x-powered-by');
app.post('/webhooks/partner', express.json({ limit: '256kb' }), (req, res) => {
  if (typeof req.body !== 'object' || req.body === null) return void res.status(400).end();
  res.status(202).json({ status: 'accepted' });
});
app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));

const port = Number(process.env.PORT ?? 0);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`LISTENING http://127.0.0.1:${bound}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
