import express, { type Router } from 'express';
import type { SimContext } from '../context.js';
import { baseUrl, selfLink, sendHal } from '../http.js';
import { API_USER_ID } from '../seed.js';

/** GET /api/v4/account: the account's identity (amocrm.ru/developers/content/crm_platform/account-info). */
export function accountRouter(ctx: SimContext): Router {
  const router = express.Router();
  router.get('/api/v4/account', (req, res) => {
    const { account } = ctx.state;
    sendHal(req, res, 200, {
      id: account.id,
      name: account.name,
      subdomain: account.subdomain,
      created_at: account.created_at,
      created_by: API_USER_ID,
      updated_at: account.created_at,
      updated_by: API_USER_ID,
      current_user_id: API_USER_ID,
      country: 'RU',
      currency: 'RUB',
      currency_symbol: '₽',
      customers_mode: 'disabled',
      is_unsorted_on: true,
      mobile_feature_version: 0,
      is_loss_reason_enabled: true,
      is_helpbot_enabled: false,
      is_technical_account: false,
      contact_name_display_order: 1,
      _links: selfLink(`${baseUrl(req)}/api/v4/account`),
    });
  });
  return router;
}
