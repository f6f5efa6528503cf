// Settle's dashboard: a single page over the public REST API, with no
// dependencies and no build step. Everything from the server is put on the
// page as text nodes, never parsed as HTML, so a receiver's response body
// or an event's data cannot become markup; the Content-Security-Policy the
// server sends forbids inline script besides.
'use strict';

(() => {
  const KEY = 'settle.apiKey';
  const PERMISSIONS = 'settle.permissions';
  const PAGE = 20;
  const REFRESH_MS = 5000;
  // The event types an endpoint may enable (SPEC), `*` for all of them.
  const EVENT_TYPES = [
    'account.created', 'account.updated', 'customer.created', 'customer.updated', 'customer.deleted',
    'payment.created', 'payment.updated', 'payment.processing', 'payment.requires_capture',
    'payment.succeeded', 'payment.canceled', 'payment.failed', 'refund.created', 'refund.succeeded',
    'webhook_endpoint.created', 'webhook_endpoint.updated', 'webhook_endpoint.deleted',
    'webhook_endpoint.disabled',
  ];
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  let generation = 0;
  // What gets focus once the next view is drawn (after an action that
  // redraws the page, so keyboard users are not dropped at the top).
  let focusNext = null;
  let autoRefresh = true;

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

  async function api(method, path, body, extraHeaders) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`, ...(extraHeaders || {}) };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['Idempotency-Key'] = idempotencyKey();
      init.body = JSON.stringify(body || {});
    }
    const res = await fetch(path, init);
    const granted = res.headers.get('settle-permissions');
    if (granted !== null) sessionStorage.setItem(PERMISSIONS, granted);
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

  // What the signed-in key may do, as the server said on sign-in: controls
  // it may not use are not shown (the API would refuse them anyway).
  function can(permission) {
    return (sessionStorage.getItem(PERMISSIONS) || '').split(' ').includes(permission);
  }
  const canWriteWebhooks = () => can('webhooks:write');

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
    if (gen !== generation) return;
    $('view').replaceChildren(...nodes);
    if (focusNext) {
      const target = $('view').querySelector(focusNext);
      focusNext = null;
      if (target) {
        target.setAttribute('tabindex', '-1');
        target.focus();
      }
    }
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

  // One equality filter at a time, as the API allows: picking one clears
  // the `others`.
  function filterSelect(id, path, params, name, choices, others) {
    const cleared = Object.fromEntries((others || []).map((o) => [o, null]));
    const select = h('select', { id, onchange: (e) => {
      location.hash = hashWith(path, params,
        { ...cleared, [name]: e.target.value, starting_after: null, ending_before: null });
    } }, h('option', { value: '' }, 'all'), choices.map((c) => h('option', { value: c }, c)));
    select.value = params.get(name) || '';
    return h('label', {}, `${name}: `, select);
  }

  // --- Forms ---------------------------------------------------------------

  let fieldCount = 0;

  // A labelled control: the label names it for screen readers and clicks.
  function field(labelText, control, hint) {
    fieldCount += 1;
    const id = control.id || `field-${fieldCount}`;
    control.id = id;
    const hintId = hint ? `${id}-hint` : undefined;
    if (hintId) control.setAttribute('aria-describedby', hintId);
    return h('div', { class: 'field' }, h('label', { for: id }, labelText), control,
      hint ? h('small', { id: hintId }, hint) : null);
  }

  // `*` or a list of types, as checkboxes in a labelled group.
  function eventPicker(idPrefix, selected) {
    const all = selected.includes('*');
    const boxes = ['*', ...EVENT_TYPES].map((t) => {
      const id = `${idPrefix}-${t === '*' ? 'all' : t.replace(/[^a-z_]/g, '-')}`;
      const box = h('input', { type: 'checkbox', id, value: t, checked: t === '*' ? all : selected.includes(t) });
      return h('label', { class: 'check', for: id }, box, t === '*' ? 'All events (*)' : t);
    });
    const group = h('fieldset', { class: 'events', id: `${idPrefix}-events` },
      h('legend', {}, 'Event types'), boxes);
    group.value = () => {
      const picked = Array.from(group.querySelectorAll('input:checked'), (b) => b.value);
      return picked.includes('*') ? ['*'] : picked;
    };
    return group;
  }

  // A secret shown this once, with a button that copies it.
  function secretPanel(secret) {
    const box = h('input', { id: 'secret', type: 'text', readonly: true, value: secret, class: 'mono', size: 48 });
    const done = h('span', { role: 'status', id: 'copy-status' });
    return h('section', { class: 'secret', 'aria-labelledby': 'secret-title' },
      h('h2', { id: 'secret-title' }, 'Signing secret'),
      h('p', {}, 'Copy it now: it is shown only this once. Receivers verify signatures with it.'),
      field('Secret', box),
      h('button', { type: 'button', id: 'copy-secret', onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
        } catch (_) {
          box.select();
          document.execCommand('copy');
        }
        done.textContent = 'Copied.';
      } }, 'Copy secret'), ' ', done);
  }

  function endpointForm(endpoint, onSubmit) {
    const url = h('input', { type: 'url', required: true, value: endpoint ? endpoint.url : '', size: 60 });
    const description = h('input', { type: 'text', value: (endpoint && endpoint.description) || '', size: 60 });
    const events = eventPicker(endpoint ? 'edit' : 'new', endpoint ? endpoint.enabled_events : ['*']);
    const status = h('select', {}, h('option', { value: 'enabled' }, 'enabled'),
      h('option', { value: 'disabled' }, 'disabled'));
    if (endpoint) status.value = endpoint.status;
    url.id = 'endpoint-url';
    description.id = 'endpoint-description';
    status.id = 'endpoint-status';
    const form = h('form', { class: 'panel', id: endpoint ? 'edit-form' : 'create-form', onsubmit: (e) => {
      e.preventDefault();
      const values = { url: url.value.trim(), description: description.value.trim() || null,
        enabled_events: events.value() };
      if (endpoint) values.status = status.value;
      onSubmit(values).catch(showError);
    } },
    field('URL', url, 'Public http(s) address that receives the signed POSTs.'),
    field('Description', description),
    events,
    endpoint ? field('Status', status) : null,
    h('button', { type: 'submit', id: endpoint ? 'save-endpoint' : 'create-endpoint' },
      endpoint ? 'Save changes' : 'Create endpoint'));
    return form;
  }

  // Polls `read` until `settled` says so (or about a minute passes),
  // calling `show` with each reading.
  async function follow(read, settled, show) {
    for (let i = 0; i < 120; i += 1) {
      const now = await read();
      show(now);
      if (settled(now)) return now;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return null;
  }

  // --- Views ---------------------------------------------------------------

  function endpointTable(list) {
    return list.data.length === 0 ? h('p', {}, 'No endpoints yet.') : table([
      { label: 'Endpoint', cell: (e) => link(`#/endpoints/${e.id}`, e.id) },
      { label: 'URL', cell: (e) => mono(e.url) },
      { label: 'Status', cell: (e) => status(e.status) },
      { label: 'Events', cell: (e) => e.enabled_events.join(', ') },
      { label: 'Description', cell: (e) => e.disabled_reason || e.description || '' },
    ], list.data);
  }

  async function endpointsView(gen, params) {
    const list = await page('/v1/webhook_endpoints', params, []);
    const slot = h('div', {});
    const listed = h('div', {}, endpointTable(list), pager('/endpoints', params, list));
    const create = canWriteWebhooks() ? h('button', { type: 'button', id: 'new-endpoint', onclick: () => {
      slot.replaceChildren(endpointForm(null, async (values) => {
        const created = await api('POST', '/v1/webhook_endpoints', values);
        slot.replaceChildren(
          h('p', { role: 'status' }, 'Created ', link(`#/endpoints/${created.id}`, created.id), '.'),
          secretPanel(created.secret));
        $('copy-secret').focus();
        // The new endpoint heads the list (the first page, newest first).
        const fresh = await page('/v1/webhook_endpoints', new URLSearchParams(), []);
        listed.replaceChildren(endpointTable(fresh), pager('/endpoints', new URLSearchParams(), fresh));
      }));
      $('endpoint-url').focus();
    } }, 'New endpoint') : null;
    render(gen,
      h('h1', {}, 'Webhook endpoints'),
      h('div', { class: 'toolbar' }, create),
      slot,
      listed);
  }

  async function retry(deliveryId, onDone) {
    const updated = await api('POST', `/v1/webhook_deliveries/${encodeURIComponent(deliveryId)}/retry`);
    onDone(updated);
    // The attempt runs in the background: follow it until it settles.
    if (updated.status === 'pending') {
      await follow(() => api('GET', `/v1/webhook_deliveries/${encodeURIComponent(deliveryId)}`),
        (now) => now.status !== 'pending', onDone);
    }
  }

  function retryButton(delivery, id, onDone) {
    if (!canWriteWebhooks()) return null;
    return h('button', { type: 'button', id, class: 'retry', 'data-delivery': delivery.id,
      'aria-label': `Retry delivery ${delivery.id}`,
      onclick: (e) => {
        e.target.disabled = true;
        retry(delivery.id, onDone).catch(showError).finally(() => { e.target.disabled = false; });
      } }, 'Retry');
  }

  // Unix seconds from a `datetime-local` value (the browser's time zone).
  function unixSeconds(local) {
    const ms = new Date(local).getTime();
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
  }

  function localInputValue(date) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function endpointActions(endpoint, base) {
    const out = h('div', { id: 'action-result' });
    const editSlot = h('div', {});
    const edit = () => {
      editSlot.replaceChildren(endpointForm(endpoint, async (values) => {
        await api('PATCH', base, values, { 'If-Match': `"${endpoint.version}"` });
        focusNext = 'h1';
        route();
      }));
      $('endpoint-url').focus();
    };
    const rotate = async () => {
      if (!window.confirm('Issue a new signing secret? The old one keeps signing during the grace period.')) return;
      const rotated = await api('POST', `${base}/rotate_secret`);
      // The rotation is a new version: an edit after it must say so.
      endpoint.version = rotated.version;
      out.replaceChildren(secretPanel(rotated.secret));
      $('copy-secret').focus();
    };
    const test = async () => {
      const delivery = await api('POST', `${base}/test`);
      const state = status(delivery.status, 'test-status');
      out.replaceChildren(h('p', { role: 'status' }, 'Test event sent: ',
        link(`#/deliveries/${delivery.id}`, delivery.id), ' — ', state));
      await follow(() => api('GET', `/v1/webhook_deliveries/${encodeURIComponent(delivery.id)}`),
        (now) => now.status !== 'pending' || now.attempts > 0,
        (now) => { state.textContent = now.status; state.className = `status status-${now.status}`; });
    };
    const remove = async () => {
      if (!window.confirm(`Delete ${endpoint.id} and its pending deliveries?`)) return;
      await api('DELETE', base);
      location.hash = '#/endpoints';
    };
    const since = h('input', { type: 'datetime-local', id: 'recover-since', required: true,
      value: localInputValue(new Date(Date.now() - 3600 * 1000)) });
    const recover = h('form', { class: 'panel', id: 'recover-form', onsubmit: (e) => {
      e.preventDefault();
      const from = unixSeconds(since.value);
      if (from === null) { showError(new Error('Pick the time the outage began.')); return; }
      (async () => {
        const replay = await api('POST', `${base}/replay`, { since: from, failed_only: true });
        const progress = h('span', { id: 'recover-progress' }, `running: ${replay.deliveries} deliveries`);
        out.replaceChildren(h('p', { role: 'status' }, 'Recovery ', mono(replay.id), ' ', progress));
        const done = await follow(async () => {
          const list = await api('GET', `${base}/replay?limit=20`);
          return list.data.find((r) => r.id === replay.id) || replay;
        }, (now) => now.status === 'done',
        (now) => { progress.textContent = `${now.status}: ${now.deliveries} deliveries`; });
        if (done) progress.textContent = `done: ${done.deliveries} failed deliveries sent again`;
      })().catch(showError);
    } },
    h('h2', {}, 'Recover failed deliveries'),
    field('Failed since', since, 'Every delivery that failed for good (its retries used up) since then is sent again.'),
    h('button', { type: 'submit', id: 'recover' }, 'Recover'));
    const run = (action) => () => action().catch(showError);
    return h('div', {},
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', id: 'edit-endpoint', onclick: edit }, 'Edit'),
        h('button', { type: 'button', id: 'rotate-secret', onclick: run(rotate) }, 'Rotate secret'),
        h('button', { type: 'button', id: 'send-test', onclick: run(test) }, 'Send test event'),
        h('button', { type: 'button', id: 'delete-endpoint', class: 'danger', onclick: run(remove) }, 'Delete')),
      editSlot, out, recover);
  }

  async function endpointView(gen, id, params) {
    const path = `/endpoints/${id}`;
    const base = `/v1/webhook_endpoints/${encodeURIComponent(id)}`;
    const [endpoint, list] = await Promise.all([
      api('GET', base), page(`${base}/deliveries`, params, ['status', 'event_type'])]);
    const statusCells = new Map();
    render(gen,
      h('h1', {}, 'Endpoint ', mono(endpoint.id)),
      details([
        ['URL', mono(endpoint.url)],
        ['Status', status(endpoint.status, 'endpoint-state')],
        ['Disabled because', endpoint.disabled_reason || '—'],
        ['Events', h('span', { id: 'endpoint-events' }, endpoint.enabled_events.join(', '))],
        ['Description', endpoint.description || '—'],
        ['Version', String(endpoint.version)],
        ['Created', time(endpoint.created)],
      ]),
      canWriteWebhooks() ? endpointActions(endpoint, base) : null,
      h('h2', {}, 'Deliveries'),
      h('div', { class: 'toolbar' },
        filterSelect('delivery-filter', path, params, 'status', ['pending', 'delivered', 'failed'], ['event_type']),
        filterSelect('type-filter', path, params, 'event_type', [...EVENT_TYPES, 'webhook_endpoint.test'],
          ['status'])),
      list.data.length === 0 ? h('p', {}, 'No deliveries.') : table([
        { label: 'Delivery', cell: (d) => link(`#/deliveries/${d.id}`, d.id) },
        { label: 'Event type', cell: (d) => d.event_type },
        { label: 'Status', cell: (d) => {
          const cell = status(d.status);
          statusCells.set(d.id, cell);
          return cell;
        } },
        { label: 'Attempts', cell: (d) => String(d.attempts) },
        { label: 'Last HTTP status', cell: (d) => d.last_status ?? '—' },
        { label: 'Next attempt', cell: (d) => time(d.next_attempt) },
        { label: 'Created', cell: (d) => time(d.created) },
        { label: 'Action', cell: (d) => retryButton(d, undefined, (now) => {
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
    let payload;
    try {
      const event = await api('GET', `/v1/events/${encodeURIComponent(delivery.event)}`);
      payload = h('pre', { id: 'payload', tabindex: 0, 'aria-label': 'Event payload as JSON' },
        JSON.stringify(event, null, 2));
    } catch (err) {
      payload = h('p', {}, err.status === 403 ? 'This key may not read events.' : err.message);
    }
    render(gen,
      h('h1', {}, 'Delivery ', mono(delivery.id)),
      details([
        ['Endpoint', link(`#/endpoints/${delivery.endpoint}`, delivery.endpoint)],
        ['Event', link(`#/events/${delivery.event}`, delivery.event)],
        ['Event type', delivery.event_type],
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
      ], attempts.data),
      h('h2', {}, 'Event payload'),
      payload);
  }

  // --- Overview ------------------------------------------------------------

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
    for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return el;
  }

  // Stacked bars, one per minute: delivered, retrying, failed.
  function minuteChart(minutes) {
    const width = 720;
    const height = 180;
    const pad = 28;
    const most = Math.max(1, ...minutes.map((m) => m.delivered + m.retrying + m.failed));
    const bar = (width - pad) / minutes.length;
    const scale = (n) => (n / most) * (height - pad);
    const totals = minutes.reduce((t, m) => ({ delivered: t.delivered + m.delivered,
      retrying: t.retrying + m.retrying, failed: t.failed + m.failed }), { delivered: 0, retrying: 0, failed: 0 });
    const summary = `Deliveries per minute over the last hour: ${totals.delivered} delivered, `
      + `${totals.retrying} retrying, ${totals.failed} failed; the busiest minute had ${most}.`;
    const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': summary,
      id: 'minute-chart', class: 'chart' }, svg('title', {}, summary));
    minutes.forEach((m, i) => {
      let y = height - pad;
      for (const outcome of ['delivered', 'retrying', 'failed']) {
        const h2 = scale(m[outcome]);
        if (h2 > 0) {
          y -= h2;
          chart.append(svg('rect', { x: pad + i * bar, y, width: Math.max(1, bar - 1), height: h2,
            class: `bar-${outcome}`, 'data-minute': m.start }));
        }
      }
    });
    chart.append(svg('line', { x1: pad, y1: height - pad, x2: width, y2: height - pad, class: 'axis' }));
    chart.append(svg('text', { x: 0, y: 12, class: 'axis-label' }, String(most)));
    chart.append(svg('text', { x: 0, y: height - pad, class: 'axis-label' }, '0'));
    chart.append(svg('text', { x: pad, y: height - 8, class: 'axis-label' }, '60 min ago'));
    chart.append(svg('text', { x: width - 30, y: height - 8, class: 'axis-label' }, 'now'));
    return chart;
  }

  async function overviewView(gen) {
    const stats = await api('GET', '/v1/webhook_stats');
    const sum = (k) => stats.minutes.reduce((n, m) => n + m[k], 0);
    const ms = (v) => (v === null || v === undefined ? '—' : `${v} ms`);
    render(gen,
      h('h1', {}, 'Overview'),
      h('p', {}, 'Per-minute figures, latency and breakers are this server process\'s; backlog and dead '
        + 'letters cover every process.'),
      h('label', { class: 'check', for: 'auto-refresh' },
        h('input', { type: 'checkbox', id: 'auto-refresh', checked: autoRefresh,
          onchange: (e) => { autoRefresh = e.target.checked; } }),
        'Refresh every 5 seconds'),
      details([
        ['Delivered (last hour)', h('span', { id: 'total-delivered' }, String(sum('delivered')))],
        ['Retrying (last hour)', h('span', { id: 'total-retrying' }, String(sum('retrying')))],
        ['Failed for good (last hour)', h('span', { id: 'total-failed' }, String(sum('failed')))],
        ['Commit → receipt p50', h('span', { id: 'receipt-p50' }, ms(stats.commit_to_receipt.p50_ms))],
        ['Commit → receipt p99', h('span', { id: 'receipt-p99' }, ms(stats.commit_to_receipt.p99_ms))],
        ['Queue dead letters', h('span', { id: 'dead-letters' }, String(stats.dead_letters))],
      ]),
      h('h2', {}, 'Deliveries per minute'),
      minuteChart(stats.minutes),
      h('ul', { class: 'legend' },
        h('li', { class: 'legend-delivered' }, 'delivered'),
        h('li', { class: 'legend-retrying' }, 'retrying'),
        h('li', { class: 'legend-failed' }, 'failed')),
      h('h2', {}, 'Endpoints'),
      stats.endpoints.length === 0 ? h('p', {}, 'No endpoints yet.') : table([
        { label: 'Endpoint', cell: (e) => link(`#/endpoints/${e.id}`, e.id) },
        { label: 'URL', cell: (e) => mono(e.url) },
        { label: 'Status', cell: (e) => status(e.status) },
        { label: 'Backlog', cell: (e) => String(e.pending) },
        { label: 'Breaker', cell: (e) => (e.breaker ? status(e.breaker) : 'not used yet') },
      ], stats.endpoints, (e) => ({ 'data-endpoint': e.id })));
    const again = () => {
      if (gen !== generation) return;
      // Not while paused, nor under a keyboard user's focus (a redraw
      // would drop it): look again shortly.
      const focused = document.activeElement;
      if (!autoRefresh || (focused && focused !== document.body && $('view').contains(focused))) {
        setTimeout(again, REFRESH_MS);
        return;
      }
      overviewView(gen).catch((err) => { if (gen === generation) showError(err); });
    };
    setTimeout(again, REFRESH_MS);
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
    if (sessionStorage.getItem(PERMISSIONS) === null) {
      // Signed in before the page learnt to ask: ask once, then draw.
      api('GET', '/v1/events?limit=1', undefined, { 'Settle-Permissions': 'true' })
        .catch(() => {})
        .finally(() => {
          if (sessionStorage.getItem(PERMISSIONS) === null) sessionStorage.setItem(PERMISSIONS, '');
          route();
        });
      return;
    }
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
    else if (what === 'overview') loading = overviewView(gen);
    else loading = endpointsView(gen, params);
    loading.catch((err) => { if (gen === generation) showError(err); });
  }

  $('sign-in-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    sessionStorage.removeItem(PERMISSIONS);
    $('key').value = '';
    try {
      // The answer names the key's permissions, even when it is a 403.
      await api('GET', '/v1/events?limit=1', undefined, { 'Settle-Permissions': 'true' });
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
    sessionStorage.removeItem(PERMISSIONS);
    location.hash = '';
    route();
  });
  window.addEventListener('hashchange', route);
  route();
})();
