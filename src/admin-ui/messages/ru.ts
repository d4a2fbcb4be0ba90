import type { Scope } from '../../admin/api-keys.js';
import type { OrderStatus } from '../../partner/schema.js';
import type { QueueState } from '../../queue/depth.js';
import { pluralOf } from '../../webview/messages/catalogue.js';

/**
 * The admin page in Russian (the default; ADMIN_LOCALE, else WEBVIEW_LOCALE). The
 * reference catalogue: en.ts must have every message with the same parameters (its type
 * is this one's). Numbers, times and plurals come from Intl (see ../format.ts).
 */

const plural = pluralOf('ru');

const STATE: Record<QueueState, string> = {
  waiting: 'Ждут',
  running: 'В работе',
  retrying: 'Ждут повтора',
  dead: 'С ошибкой',
};

/** Company 1's statuses, as its own people call them. */
const ORDER_STATUS: Record<OrderStatus, string> = {
  on_approval: 'В обработке',
  approved: 'Подтверждён',
  in_work: 'В работе',
  executed: 'Выполнен',
  rejected: 'Отклонён',
  cancelled: 'Отменён',
};

export const ru = () => ({
  lang: 'ru',
  product: 'amobridge',
  layout: {
    title: 'Администрирование',
    skip: 'Перейти к содержанию',
    nav: 'Разделы',
    overview: 'Обзор',
    dead: 'Задания с ошибкой',
    orders: 'Заказы',
    signOut: 'Выйти',
    signedInAs: (name: string) => `Ключ «${name}»`,
  },
  signIn: {
    title: 'Вход',
    intro: 'Войдите с API-ключом администратора (его выдаёт команда amobridge apikey create).',
    key: 'API-ключ',
    keyHint: 'Начинается с ak_. Ключ не сохраняется в браузере и не попадает в журналы.',
    submit: 'Войти',
    refused: 'Ключ не подошёл: он неверен, отозван или введён не полностью.',
    empty: 'Введите API-ключ.',
    signedOut: 'Вы вышли.',
    sessionEnded: 'Сеанс завершён или ключ отозван. Войдите снова.',
  },
  overview: {
    title: 'Обзор',
    queue: 'Очередь заданий',
    kind: 'Вид задания',
    total: 'Всего',
    state: STATE,
    oldest: 'Самое давнее ожидающее задание',
    noneWaiting: 'Ни одно задание не ждёт.',
    waitingFor: (age: string) => `в ожидании: ${age}`,
    deadCount: (n: number) =>
      n === 0
        ? 'Заданий с ошибкой нет.'
        : `${n} ${plural(n, { one: 'задание с ошибкой ждёт', few: 'задания с ошибкой ждут', many: 'заданий с ошибкой ждут', other: 'задания с ошибкой ждут' })} решения.`,
    deadLink: 'Открыть задания с ошибкой',
    services: 'Внешние сервисы',
    service: { amocrm: 'amoCRM', partner: 'Компания 1' },
    mappings: 'Таблица этапов',
    mappingsResolved: 'сопоставлена с amoCRM',
    mappingsPending: 'ещё не сопоставлена с amoCRM',
    health: {
      ok: 'работает',
      unknown: 'ещё не проверялся',
      unauthorized: 'отказ в доступе',
      unreachable: (since: string) => `недоступен с ${since}`,
    },
    needsScope: (scope: Scope) => `Этот раздел виден ключу с правом ${scope}.`,
  },
  dead: {
    title: 'Задания с ошибкой',
    intro: 'Задания, исчерпавшие попытки или отклонённые окончательно. Устраните причину и повторите: задание вернётся в очередь с новыми попытками.',
    empty: 'Заданий с ошибкой нет.',
    shown: (n: number, limit: number) => (n < limit ? '' : `Показаны последние ${limit}.`),
    job: (id: string) => `Задание ${id}`,
    kind: 'Вид',
    key: 'Ключ очереди',
    attempts: 'Попыток',
    failedAt: 'Ошибка',
    error: 'Последняя ошибка',
    fullError: 'Полный текст',
    replay: 'Повторить',
    replayLabel: (id: string) => `Повторить задание ${id}`,
    replayed: (id: string) => `Задание ${id} возвращено в очередь.`,
    notDead: (id: string) => `Задание ${id} уже не в списке ошибок: его повторили раньше.`,
    needsReplay: 'Повторять задания может ключ с правом jobs:replay.',
  },
  orders: {
    title: 'Заказы',
    search: 'Поиск заказов',
    q: 'Что искать',
    qHint: 'Номер заказа или ID пользователя целиком, часть имени клиента или не меньше 4 цифр телефона.',
    status: 'Статус',
    anyStatus: 'Любой',
    find: 'Найти',
    results: 'Найденные заказы',
    empty: 'Ничего не найдено.',
    next: 'Следующая страница →',
    first: '← К началу',
    badQuery: 'Такой запрос не разобрать: проверьте поле поиска и начните с первой страницы.',
    statuses: ORDER_STATUS,
    user: 'Пользователь',
    deal: 'Сделка',
    contact: 'Контакт',
    origin: 'Откуда',
    origins: { webhook: 'из приложения Компании 1', webview: 'из веб-страницы' } as Record<string, string>,
    updated: 'Изменён',
    none: '—',
    paused: 'На паузе',
  },
  order: {
    title: (id: string) => `Заказ ${id}`,
    back: '← К поиску заказов',
    facts: 'Заказ',
    closedByPartner: 'Закрыт Компанией 1',
    note: 'Примечание',
    jobs: 'Задания заказа',
    job: 'Задание',
    jobStatus: { queued: 'ждёт', running: 'выполняется', retrying: 'ждёт повтора', dead: 'с ошибкой', done: 'выполнено' } as Record<string, string>,
    noJobs: 'Заданий нет.',
    timeline: 'История',
    noTimeline: 'Записей нет.',
    pausedText: 'Заказ на паузе: мост не пишет о нём ни в amoCRM, ни в Компанию 1. Вебхуки принимаются, а при снятии с паузы заказ догонит текущее состояние.',
    userPausedText: 'На паузе все заказы этого пользователя; снять эту паузу можно через API (POST /admin/users/…/resume).',
    pause: 'Поставить на паузу',
    resume: 'Снять с паузы',
    paused: (id: string) => `Заказ ${id} поставлен на паузу.`,
    resumed: (id: string) => `Заказ ${id} снят с паузы; задания, которые его догонят, в очереди.`,
    needsWrite: 'Ставить на паузу может ключ с правом orders:write.',
    notFound: 'Заказ не найден',
    notFoundText: (id: string) => `Мост не знает заказа ${id}.`,
  },
  timeline: {
    sources: { partner: 'Компания 1', amocrm: 'amoCRM', bridge: 'мост', webview: 'веб-страница', admin: 'администратор' },
    /** The timeline's events (src/admin/order-timeline.ts, the order log); one not named here shows as its code. */
    events: {
      'webhook.received': 'Пришёл вебхук',
      'sweep.found': 'Найден при сверке',
      'job.queued': 'Задание поставлено в очередь',
      'job.attempt': 'Попытка задания',
      'job.dead_letter': 'Задание остановлено с ошибкой',
      'job.skipped': 'Задание пропущено',
      'order.recorded': 'Заказ записан',
      'order.changed': 'Заказ изменён',
      'order.unchanged': 'Заказ пришёл без изменений',
      'order.patched': 'Заказ обновлён в Компании 1',
      'deal.created': 'Создана сделка',
      'deal.found': 'Найдена сделка',
      'deal.noted': 'Примечание в сделке',
      'deal.moved': 'Сделка перенесена',
      decision: 'Решение',
      'order.paused': 'Заказ поставлен на паузу',
      'order.resumed': 'Заказ снят с паузы',
      'user.paused': 'Пользователь поставлен на паузу',
      'user.resumed': 'Пользователь снят с паузы',
    } as Record<string, string>,
  },
  quota: {
    title: 'Обращения к сервисам',
    peer: { amocrm: 'amoCRM', partner: 'Компания 1' },
    day: 'За сутки',
    hour: 'За час',
    minute: 'За минуту',
    limited: 'Из них 429',
    wait: 'Ожидание лимита сейчас',
    noLimiter: 'лимита нет',
    ms: (n: number) => `${n} мс`,
  },
  pages: {
    forbidden: 'Недостаточно прав',
    forbiddenText: (scope: Scope) => `У ключа, с которым вы вошли, нет права ${scope}. Войдите с другим ключом или попросите добавить право.`,
    formExpired: 'Форма устарела',
    formExpiredText: 'Страница была открыта в другом сеансе или слишком давно. Откройте её заново и повторите действие.',
    notFound: 'Страница не найдена',
    nothingHere: 'По этому адресу ничего нет.',
    badRequest: 'Неверный запрос',
    goBack: 'Вернитесь назад и попробуйте снова.',
    serverError: 'Что-то пошло не так',
    later: 'Попробуйте ещё раз через минуту. Подробности — в журнале сервиса.',
    toOverview: 'На обзор',
    toSignIn: 'Ко входу',
  },
});

export type AdminMessages = ReturnType<typeof ru>;
