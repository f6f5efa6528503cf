// Settle's dashboard: a single page over the public REST API, with no
// dependencies and no build step. Everything from the server is put on the
// page as text nodes, never parsed as HTML, so a receiver's response body
// or an event's data cannot become markup; the Content-Security-Policy the
// server sends forbids inline script besides.
'use strict';

(() => {
  const KEY = 'settle.apiKey';
  const PAGE = 20;
  const $ = (id) => document.getElementById(id);
  let generation = 0;

  // --- DOM -----------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else if (name === 'class') el.className = value;
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const link = (href, text) => h('a', { href }, text);
  const mono = (text) => h('span', { class: 'mono' }, text ?? '');
  const status = (text, id) => h('span', { class: `status status-${text}`, id }, text);

  function time(seconds) {
    if (seconds === null || seconds === undefined) return '';
    return new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }

  // Minor units to a decimal string, exactly (no floating point).
  function money(amount, currency) {
    const code = String(currency).toUpperCase();
    let digits = 2;
    try {
      digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions()
        .maximumFractionDigits;
    } catch (_) { /* unknown to this browser: assume 2 */ }
    let text = String(Math.abs(amount));
    if (digits > 0) {
      text = text.padStart(digits + 1, '0');
      text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
    }
    return `${amount < 0 ? '-' : ''}${text} ${code}`;
  }

  function table(columns, rows, rowAttrs) {
    return h('table', {},
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', rowAttrs ? rowAttrs(row) : {},
        columns.map((c) => h('td', {}, c.cell(row)))))));
  }

  function details(pairs) {
    return h('dl', {}, pairs.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
  }

  // --- API -----------------------------------------------------------------

  function idempotencyKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return 'dash_' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['Idempotency-Key'] = idempotencyKey();
      init.body = JSON.stringify(body || {});
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON: reported below */ }
    if (!res.ok) {
      const err = new Error((json && json.error && json.error.message) || `The server answered ${res.status}.`);
      err.status = res.status;
      throw err;
    }
    return json;
  }

  // --- Chrome --------------------------------------------------------------

  function showError(err) {
    if (err && err.status === 401) {
      sessionStorage.removeItem(KEY);
      route();
    }
    const box = $('error');
    box.textContent = (err && err.message) || String(err);
    box.hidden = false;
  }

  function render(gen, ...nodes) {
    if (gen === generation) $('view').replaceChildren(...nodes);
  }

  function hashWith(path, params, changes) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === '') next.delete(k); else next.set(k, v);
    }
    const qs = next.toString();
    return `#${path}${qs ? `?${qs}` : ''}`;
  }

  // A keyset page: newest first, "Older" continues after the last row and
  // "Newer" goes back before the first, as the API's cursors do.
  async function page(apiPath, params, filters) {
    const q = new URLSearchParams({ limit: params.get('limit') || String(PAGE) });
    for (const k of ['starting_after', 'ending_before', ...filters]) {
      if (params.get(k)) q.set(k, params.get(k));
    }
    return api('GET', `${apiPath}?${q}`);
  }

  function pager(path, params, list) {
    const data = list.data;
    const before = params.get('ending_before');
    const after = params.get('starting_after');
    const newer = data.length > 0 && (before ? list.has_more : Boolean(after));
    const older = data.length > 0 && (before ? true : list.has_more);
    const go = (changes) => () => { location.hash = hashWith(path, params, changes); };
    return h('div', { class: 'pager' },
      h('button', { type: 'button', id: 'newer', disabled: !newer,
        onclick: go({ ending_before: data.length ? data[0].id : null, starting_after: null }) }, '← Newer'),
      h('button', { type: 'button', id: 'older', disabled: !older,
        onclick: go({ starting_after: data.length ? data[data.length - 1].id : null, ending_before: null }) },
      'Older →'));
  }

  function filterSelect(id, path, params, name, choices) {
    const select = h('select', { id, onchange: (e) => {
      location.hash = hashWith(path, params, { [name]: e.target.value, starting_after: null, ending_before: null });
    } }, h('option', { value: '' }, 'all'), choices.map((c) => h('option', { value: c }, c)));
    select.value = params.get(name) || '';
    return h('label', {}, `${name}: `, select);
  }

  // --- Views ---------------------------------------------------------------

  async function endpointsView(gen, params) {
    const list = await page('/v1/webhook_endpoints', params, []);
    render(gen,
      h('h1', {}, 'Webhook endpoints'),
      list.data.length === 0 ? h('p', {}, 'No endpoints yet: create one with POST /v1/webhook_endpoints.') : table([
        { label: 'Endpoint', cell: (e) => link(`#/endpoints/${e.id}`, e.id) },
        { label: 'URL', cell: (e) => mono(e.url) },
        { label: 'Status', cell: (e) => status(e.status) },
        { label: 'Events', cell: (e) => e.enabled_events.join(', ') },
        { label: 'Description', cell: (e) => e.disabled_reason || e.description || '' },
      ], list.data),
      pager('/endpoints', params, list));
  }

  async function retry(deliveryId, onDone) {
    const updated = await api('POST', `/v1/webhook_deliveries/${encodeURIComponent(deliveryId)}/retry`);
    onDone(updated);
    // The attempt runs in the background: follow it until it settles.
    for (let i = 0; i < 120 && updated.status === 'pending'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const now = await api('GET', `/v1/webhook_deliveries/${encodeURIComponent(deliveryId)}`);
      onDone(now);
      if (now.status !== 'pending') break;
    }
  }

  function retryButton(delivery, id, onDone) {
    return h('button', { type: 'button', id, class: 'retry', 'data-delivery': delivery.id,
      onclick: (e) => {
        e.target.disabled = true;
        retry(delivery.id, onDone).catch(showError).finally(() => { e.target.disabled = false; });
      } }, 'Retry');
  }

  async function endpointView(gen, id, params) {
    const path = `/endpoints/${id}`;
    const base = `/v1/webhook_endpoints/${encodeURIComponent(id)}`;
    const [endpoint, list] = await Promise.all([
      api('GET', base), page(`${base}/deliveries`, params, ['status'])]);
    const statusCells = new Map();
    render(gen,
      h('h1', {}, 'Endpoint ', mono(endpoint.id)),
      details([
        ['URL', mono(endpoint.url)],
        ['Status', status(endpoint.status)],
        ['Disabled because', endpoint.disabled_reason || '—'],
        ['Events', endpoint.enabled_events.join(', ')],
        ['Description', endpoint.description || '—'],
        ['Created', time(endpoint.created)],
      ]),
      h('h2', {}, 'Deliveries'),
      h('div', { class: 'toolbar' }, filterSelect('delivery-filter', path, params, 'status',
        ['pending', 'delivered', 'failed'])),
      list.data.length === 0 ? h('p', {}, 'No deliveries.') : table([
        { label: 'Delivery', cell: (d) => link(`#/deliveries/${d.id}`, d.id) },
        { label: 'Event', cell: (d) => link(`#/events/${d.event}`, d.event) },
        { label: 'Status', cell: (d) => {
          const cell = status(d.status);
          statusCells.set(d.id, cell);
          return cell;
        } },
        { label: 'Attempts', cell: (d) => String(d.attempts) },
        { label: 'Last HTTP status', cell: (d) => d.last_status ?? '—' },
        { label: 'Next attempt', cell: (d) => time(d.next_attempt) },
        { label: 'Created', cell: (d) => time(d.created) },
        { label: '', cell: (d) => retryButton(d, undefined, (now) => {
          const cell = statusCells.get(d.id);
          cell.textContent = now.status;
          cell.className = `status status-${now.status}`;
        }) },
      ], list.data, (d) => ({ 'data-delivery': d.id })),
      pager(path, params, list));
  }

  async function deliveryView(gen, id) {
    const base = `/v1/webhook_deliveries/${encodeURIComponent(id)}`;
    const [delivery, attempts] = await Promise.all([
      api('GET', base), api('GET', `${base}/attempts?limit=100`)]);
    render(gen,
      h('h1', {}, 'Delivery ', mono(delivery.id)),
      details([
        ['Endpoint', link(`#/endpoints/${delivery.endpoint}`, delivery.endpoint)],
        ['Event', link(`#/events/${delivery.event}`, delivery.event)],
        ['Status', status(delivery.status, 'delivery-status')],
        ['Attempts', String(delivery.attempts)],
        ['Next attempt', time(delivery.next_attempt) || '—'],
        ['Created', time(delivery.created)],
      ]),
      h('div', { class: 'toolbar' }, retryButton(delivery, 'retry', (now) => {
        const cell = $('delivery-status');
        if (cell) {
          cell.textContent = now.status;
          cell.className = `status status-${now.status}`;
        }
        if (now.status !== 'pending') route();
      })),
      h('h2', {}, 'Attempts'),
      attempts.data.length === 0 ? h('p', {}, 'No attempt yet.') : table([
        { label: 'Time', cell: (a) => time(a.created) },
        { label: 'Duration', cell: (a) => `${a.duration_ms} ms` },
        { label: 'Request id', cell: (a) => mono(a.request_id) },
        { label: 'HTTP status', cell: (a) => a.response_status ?? '—' },
        { label: 'Error', cell: (a) => a.error || '' },
        { label: 'Response (as text)', cell: (a) => h('pre', { class: 'excerpt' }, a.response_excerpt || '') },
      ], attempts.data));
  }

  async function eventsView(gen, params) {
    const list = await page('/v1/events', params, ['type']);
    const type = h('input', { id: 'event-type', placeholder: 'payment.succeeded', value: params.get('type') || '' });
    render(gen,
      h('h1', {}, 'Events'),
      h('form', { class: 'toolbar', onsubmit: (e) => {
        e.preventDefault();
        location.hash = hashWith('/events', params, { type: type.value.trim(), starting_after: null, ending_before: null });
      } }, h('label', {}, 'type: ', type), h('button', { type: 'submit' }, 'Filter')),
      list.data.length === 0 ? h('p', {}, 'No events.') : table([
        { label: 'Event', cell: (e) => link(`#/events/${e.id}`, e.id) },
        { label: 'Type', cell: (e) => e.type },
        { label: 'Object', cell: (e) => mono(e.data && e.data.object && e.data.object.id) },
        { label: 'Created', cell: (e) => time(e.created) },
      ], list.data),
      pager('/events', params, list));
  }

  async function eventView(gen, id) {
    const event = await api('GET', `/v1/events/${encodeURIComponent(id)}`);
    render(gen,
      h('h1', {}, 'Event ', mono(event.id)),
      details([['Type', event.type], ['Sequence', String(event.sequence)], ['Created', time(event.created)]]),
      h('pre', { id: 'event-json' }, JSON.stringify(event, null, 2)));
  }

  async function paymentsView(gen, params) {
    const list = await page('/v1/payments', params, ['status']);
    render(gen,
      h('h1', {}, 'Payments'),
      h('div', { class: 'toolbar' }, filterSelect('payment-filter', '/payments', params, 'status',
        ['processing', 'requires_capture', 'succeeded', 'failed', 'canceled'])),
      list.data.length === 0 ? h('p', {}, 'No payments.') : table([
        { label: 'Payment', cell: (p) => mono(p.id) },
        { label: 'Amount', cell: (p) => money(p.amount, p.currency) },
        { label: 'Refunded', cell: (p) => (p.amount_refunded ? money(p.amount_refunded, p.currency) : '') },
        { label: 'Status', cell: (p) => status(p.status) },
        { label: 'Source', cell: (p) => mono(p.source) },
        { label: 'Destination', cell: (p) => mono(p.destination) },
        { label: 'Created', cell: (p) => time(p.created) },
      ], list.data, (p) => ({ 'data-payment': p.id })),
      pager('/payments', params, list));
  }

  // --- Routing -------------------------------------------------------------

  function route() {
    generation += 1;
    const gen = generation;
    const signedIn = Boolean(sessionStorage.getItem(KEY));
    $('sign-in-form').hidden = signedIn;
    $('nav').hidden = !signedIn;
    if (!signedIn) {
      $('view').replaceChildren();
      $('key').focus();
      return;
    }
    $('error').hidden = true;
    const [path, qs] = location.hash.slice(1).split('?');
    const params = new URLSearchParams(qs || '');
    const [what, id] = path.split('/').filter(Boolean);
    $('view').replaceChildren(h('p', {}, 'Loading…'));
    let loading;
    if (what === 'endpoints' && id) loading = endpointView(gen, id, params);
    else if (what === 'deliveries' && id) loading = deliveryView(gen, id);
    else if (what === 'events' && id) loading = eventView(gen, id);
    else if (what === 'events') loading = eventsView(gen, params);
    else if (what === 'payments') loading = paymentsView(gen, params);
    else loading = endpointsView(gen, params);
    loading.catch((err) => { if (gen === generation) showError(err); });
  }

  $('sign-in-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    try {
      await api('GET', '/v1/events?limit=1');
    } catch (err) {
      // 403: the key is good but may not read events; the pages say what it can read.
      if (err.status !== 403) {
        sessionStorage.removeItem(KEY);
        showError(err.status === 401 ? new Error('This API key was not accepted.') : err);
        return;
      }
    }
    if (!location.hash || location.hash === '#') location.hash = '#/endpoints'; else route();
  });
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    location.hash = '';
    route();
  });
  window.addEventListener('hashchange', route);
  route();
})();
