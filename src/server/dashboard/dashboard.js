// kpid dashboard: KPI tiles and charts, firing alerts, OKR drafts and active OKRs, polled from
// kpid's JSON API on the same origin. No framework and nothing from elsewhere (the page's
// Content-Security-Policy forbids it). Every string from the API goes into the page through
// textContent or setAttribute, never as markup.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------------
  // Settings

  const params = new URLSearchParams(window.location.search);
  // ?refresh=SECONDS: how often KPIs, alerts and OKRs are polled (1-300, default 5).
  const POLL_MS = clamp(Number(params.get('refresh')) || 5, 1, 300) * 1000;
  // Charts are heavier (two requests per KPI): redrawn when their KPI's status changes, when the
  // range changes, and otherwise at most this often.
  const CHART_MS = Math.max(POLL_MS * 6, 30000);
  const HISTORY_LIMIT = 1000;  // status changes read per KPI for the breach shading
  const ACK_COMMENT = 'acknowledged on the kpid dashboard';
  const DEFAULT_AUTHOR = 'dashboard';

  const RANGES = {'1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, '7d': 7 * 86400};
  const STATUS_ORDER = ['crit', 'warn', 'anomalous', 'no_data', 'unknown', 'ok'];
  const SEVERITY_ORDER = ['critical', 'error', 'warning', 'info'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    kpis: [],
    alerts: [],
    okrs: [],
    slos: [],
    sloCharts: new Map(),  // SLO id -> {data (its detail with history), status, fetched}
    sloChartsBusy: false,
    alertSlo: null,       // the SLO whose firing alerts alone are shown, or null for all
    token: '',            // bearer token, when kpid requires one
    range: load('kpid.range', '6h'),
    charts: new Map(),    // KPI id -> {data, history, range, status, since, fetched}
    inflight: new Set(),  // "ack:ID" / "accept:ID" while the request runs
    errors: new Map(),    // same keys -> the last error message of that action
    lastUpdate: null,
    timer: null,
    seq: 0,
    chartsBusy: false,
    chartsAgain: false,
  };
  if (!RANGES[state.range]) state.range = '6h';

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  // localStorage can throw (disabled storage); the dashboard works without it.
  function load(key, fallback) {
    try { return window.localStorage.getItem(key) || fallback; } catch (e) { return fallback; }
  }
  function save(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value);
      else window.localStorage.removeItem(key);
    } catch (e) { /* not remembered, still used */ }
  }

  // An element with attributes and children; strings become text nodes, never markup.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
    return el;
  }
  function s(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    if (parent) parent.appendChild(el);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function setText(el, text) {
    const t = String(text);
    if (el.textContent !== t) el.textContent = t;
  }
  function setAttr(el, name, value) {
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, String(value));
    }
  }
  const $ = (id) => document.getElementById(id);

  // Keeps `container`'s keyed children in the order of `items`: existing elements are updated
  // in place (a button being clicked stays the same node), new ones created, stale ones removed.
  function reconcile(container, items, keyOf, create, update) {
    const existing = new Map();
    for (const el of container.children) existing.set(el.dataset.key, el);
    let prev = null;
    const keep = new Set();
    for (const item of items) {
      const key = String(keyOf(item));
      let el = existing.get(key);
      if (!el) {
        el = create(item);
        el.dataset.key = key;
      }
      update(el, item);
      keep.add(key);
      const next = prev ? prev.nextSibling : container.firstChild;
      if (next !== el) container.insertBefore(el, next);
      prev = el;
    }
    for (const [key, el] of existing) if (!keep.has(key)) el.remove();
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting

  function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }

  function formatNumber(v) {
    if (!isNum(v)) return '–';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1000) return v.toLocaleString(undefined, {maximumFractionDigits: 0});
    if (a >= 1) return v.toLocaleString(undefined, {maximumFractionDigits: a >= 100 ? 1 : 2});
    return v.toLocaleString(undefined, {maximumSignificantDigits: 3});
  }

  function withUnit(v, unit) {
    const n = formatNumber(v);
    if (!isNum(v) || !unit) return n;
    return unit === '%' ? n + '%' : n + '\u00a0' + unit;
  }

  function parseTime(text) {
    if (!text) return null;
    const t = Date.parse(text);
    return Number.isNaN(t) ? null : t;
  }

  // 42s, 12m, 3h 5m, 2d 4h
  function duration(ms) {
    const sec = Math.max(0, Math.floor(ms / 1000));
    if (sec < 60) return sec + 's';
    const min = Math.floor(sec / 60);
    if (min < 60) return min + 'm';
    const hours = Math.floor(min / 60);
    if (hours < 24) return hours + 'h' + (min % 60 ? ' ' + (min % 60) + 'm' : '');
    const days = Math.floor(hours / 24);
    return days + 'd' + (hours % 24 ? ' ' + (hours % 24) + 'h' : '');
  }

  function pad2(n) { return String(n).padStart(2, '0'); }
  function clock(t) {
    const d = new Date(t);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }
  function clockSeconds(t) {
    return clock(t) + ':' + pad2(new Date(t).getSeconds());
  }
  const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov',
                  'Dec'];
  // "14:05" today, "Tue 14:05" within a week, else "3 Nov 14:05".
  function when(t) {
    const d = new Date(t);
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return clock(t);
    if (Math.abs(now - d) < 6 * 86400000) return WEEKDAYS[d.getDay()] + ' ' + clock(t);
    return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + clock(t);
  }
  function day(t) {
    const d = new Date(t);
    return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + d.getFullYear();
  }

  function statusLabel(status) { return String(status || 'no_data').replace('_', ' '); }
  function statusClass(status) {
    return 'status-' + (STATUS_ORDER.includes(status) ? status : 'no_data');
  }

  // When a level is breached: "<2", ">500", "<1 or >300" (never "1–300", which reads as the
  // healthy range when it is the one outside which the level starts).
  function breachText(low, high) {
    const parts = [];
    if (isNum(low)) parts.push('<' + formatNumber(low));
    if (isNum(high)) parts.push('>' + formatNumber(high));
    return parts.join(' or ');
  }

  // The band in words: "target 200 · warn >500 · crit >800 ms", "warn <5 or >120 · crit <1 or
  // >300 tickets".
  function bandText(kpi) {
    const b = kpi.band;
    if (!b) return 'no band';
    const u = kpi.unit ? (kpi.unit === '%' ? '%' : ' ' + kpi.unit) : '';
    const parts = [];
    if (isNum(b.target)) parts.push('target ' + formatNumber(b.target));
    for (const level of ['warn', 'crit']) {
      let when;
      if (kpi.direction === 'in_range') {
        when = breachText(b[level + '_low'], b[level + '_high']);
      } else if (kpi.direction === 'higher_is_better') {
        when = breachText(b[level], null);
      } else {
        when = breachText(null, b[level]);
      }
      if (when) parts.push(level + ' ' + when);
    }
    return parts.join(' · ') + u;
  }

  const DIRECTION_TEXT = {
    lower_is_better: 'lower is better',
    higher_is_better: 'higher is better',
    in_range: 'should stay in range',
  };

  // ---------------------------------------------------------------------------------------------
  // The API

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // The bearer token, when kpid requires one: kept for this tab only (sessionStorage), sent
  // with every API call.
  function loadToken() {
    try { return window.sessionStorage.getItem('kpid.token') || ''; } catch (e) { return ''; }
  }
  function saveToken(value) {
    try {
      if (value) window.sessionStorage.setItem('kpid.token', value);
      else window.sessionStorage.removeItem('kpid.token');
    } catch (e) { /* used, not kept */ }
  }

  async function api(path, options) {
    let res;
    const opts = Object.assign({cache: 'no-store', credentials: 'same-origin'}, options || {});
    if (state.token) {
      opts.headers = Object.assign({}, opts.headers || {}, {'Authorization': 'Bearer ' + state.token});
    }
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError('kpid is unreachable', 0);
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok || !body || body.status !== 'success') {
      const message = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status;
      throw new ApiError(message, res.status);
    }
    return body.data;
  }

  function post(path, payload) {
    return api(path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(payload),
    });
  }

  function author() {
    const v = $('author').value.trim();
    return v || DEFAULT_AUTHOR;
  }

  // ---------------------------------------------------------------------------------------------
  // Polling

  async function poll() {
    window.clearTimeout(state.timer);
    // Polls can overlap (an action polls at once): only the newest one's answers are shown.
    const seq = ++state.seq;
    try {
      const [kpis, alerts, drafts, active, slos] = await Promise.all([
        api('/api/v1/kpis'),
        api('/api/v1/alerts?state=firing'),
        api('/api/v1/okrs?state=draft'),
        api('/api/v1/okrs?state=active'),
        // A kpid without the SLO API shows the rest of the page.
        api('/api/v1/slos').catch((e) => {
          if (e.status === 404) return [];
          throw e;
        }),
      ]);
      if (seq !== state.seq) return;
      state.kpis = Array.isArray(kpis) ? kpis : [];
      state.alerts = Array.isArray(alerts) ? alerts : [];
      state.okrs = [...(drafts || []), ...(active || [])];
      state.slos = Array.isArray(slos) ? slos : [];
      state.lastUpdate = Date.now();
      render();
      setConnection('live', 'Live · updated ' + clockSeconds(state.lastUpdate));
      refreshCharts(false);
      refreshSloCharts(false);
    } catch (e) {
      if (seq !== state.seq) return;
      const last = state.lastUpdate ? ' · last update ' + clockSeconds(state.lastUpdate) : '';
      if (e.status === 401 || e.status === 403) {
        $('token-box').hidden = false;
        setConnection('down', (e.status === 401 ? 'kpid needs a token: enter one'
                                                : 'This token may not read') + last);
      } else if (e.status === 503) {
        setConnection('down', 'kpid is starting or stopping' + last + ' · retrying');
      } else {
        setConnection('down', 'Connection lost' + last + ' · retrying');
      }
    } finally {
      if (seq === state.seq) {
        window.clearTimeout(state.timer);
        state.timer = window.setTimeout(poll, POLL_MS);
      }
    }
  }

  function setConnection(kind, text) {
    const el = $('connection');
    setAttr(el, 'data-state', kind);
    setText(el.querySelector('.text'), text);
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering

  function render() {
    renderSummary();
    renderAlerts();
    renderSlos();
    renderTiles();
    renderChartCards();
    renderOkrs();
  }

  function renderSummary() {
    const counts = {};
    for (const k of state.kpis) counts[k.status] = (counts[k.status] || 0) + 1;
    const items = STATUS_ORDER.filter((st) => counts[st]).map((st) => ({st, n: counts[st]}));
    reconcile($('summary'), items, (i) => i.st,
              (i) => h('span', {class: 'chip ' + statusClass(i.st)}),
              (el, i) => setText(el, i.n + ' ' + statusLabel(i.st)));
    const bad = ['crit', 'warn'].filter((st) => counts[st]).map((st) => counts[st] + ' ' + st);
    document.title = state.kpis.length === 0 ? 'kpid'
        : bad.length ? '(' + bad.join(', ') + ') kpid' : 'kpid · all healthy';
    setText($('kpis-count'), state.kpis.length);
  }

  // --- Alerts

  function renderAlerts() {
    const slo = state.alertSlo && state.slos.find((o) => o.id === state.alertSlo);
    if (state.alertSlo && !slo) state.alertSlo = null;  // gone with a reload
    const filter = $('alerts-filter');
    filter.hidden = !slo;
    setText(filter.querySelector('.text'), slo ? 'SLO ' + (slo.name || slo.id) : '');
    const alerts = state.alerts.filter((a) => !slo || a.slo === slo.id).sort((a, b) => {
      const sa = SEVERITY_ORDER.indexOf(a.severity), sb = SEVERITY_ORDER.indexOf(b.severity);
      if (sa !== sb) return sa - sb;
      return (parseTime(b.firing_since) || 0) - (parseTime(a.firing_since) || 0);
    });
    $('alerts-empty').hidden = alerts.length > 0;
    const unacked = alerts.filter((a) => !a.acknowledged).length;
    setText($('alerts-count'), alerts.length === 0 ? ''
        : alerts.length + (unacked < alerts.length ? ' · ' + unacked + ' unacknowledged' : ''));
    reconcile($('alerts'), alerts, (a) => a.id, createAlert, updateAlert);
  }

  function createAlert(a) {
    const li = h('li', {class: 'alert', 'data-alert': a.id});
    li.append(
        h('span', {class: 'severity'}),
        h('div', {class: 'alert-main'},
          h('div', {class: 'alert-title'}, h('span', {class: 'alert-kpi'}),
            h('span', {class: 'alert-summary'})),
          h('div', {class: 'alert-meta'})),
        h('div', {class: 'alert-actions'},
          h('button', {type: 'button', class: 'btn btn-primary', 'data-action': 'ack',
                       'data-alert': a.id}, 'Acknowledge'),
          h('div', {class: 'action-note'})));
    return li;
  }

  function updateAlert(li, a) {
    setAttr(li, 'data-severity', a.severity);
    setAttr(li, 'data-acknowledged', a.acknowledged ? 'true' : 'false');
    const sev = li.querySelector('.severity');
    setText(sev, a.severity);
    setAttr(sev, 'class', 'severity sev-' + a.severity);
    setAttr(li, 'data-slo', a.slo || null);
    const slo = a.slo ? state.slos.find((o) => o.id === a.slo) : null;
    setText(li.querySelector('.alert-kpi'),
            a.slo ? 'SLO ' + ((slo && slo.name) || a.slo) : a.kpi_name || a.kpi);
    const summary = (a.annotations && a.annotations.summary) || a.name;
    setText(li.querySelector('.alert-summary'), summary);

    // Meta line: rebuilt (no controls in it), only when its text changes.
    const firing = parseTime(a.firing_since);
    const parts = [];
    if (a.owner) parts.push({text: a.owner, cls: 'owner'});
    if (firing) parts.push({text: 'firing for ' + duration(Date.now() - firing) +
                                  ' (since ' + when(firing) + ')'});
    if (isNum(a.value)) {
      parts.push({text: 'value ' + withUnit(a.value, a.unit) +
                        (isNum(a.threshold) ? ', threshold ' + withUnit(a.threshold, a.unit)
                                            : '')});
    }
    parts.push({text: a.condition});
    if (a.silenced_by && a.silenced_by.length) parts.push({text: 'silenced', cls: 'tag'});
    const meta = li.querySelector('.alert-meta');
    const key = JSON.stringify([parts, a.runbook_url]);
    if (meta.dataset.key !== key) {
      meta.dataset.key = key;
      const nodes = [];
      parts.forEach((p, i) => {
        if (i) nodes.push(' · ');
        nodes.push(h('span', {class: p.cls || null}, p.text));
      });
      if (/^https?:\/\//i.test(a.runbook_url || '')) {
        nodes.push(' · ', h('a', {href: a.runbook_url, target: '_blank',
                                  rel: 'noopener noreferrer'}, 'runbook'));
      }
      meta.replaceChildren(...nodes);
    }

    const button = li.querySelector('button[data-action="ack"]');
    const note = li.querySelector('.action-note');
    const busy = state.inflight.has('ack:' + a.id);
    if (a.acknowledged) {
      button.disabled = true;
      setText(button, 'Acknowledged');
      setAttr(button, 'class', 'btn btn-done');
      const at = parseTime(a.acknowledged.at);
      setText(note, 'by ' + a.acknowledged.author + (at ? ' at ' + when(at) : ''));
    } else {
      button.disabled = busy;
      setText(button, busy ? 'Acknowledging…' : 'Acknowledge');
      setAttr(button, 'class', 'btn btn-primary');
      setText(note, state.errors.get('ack:' + a.id) || '');
    }
    setAttr(note, 'data-error', !a.acknowledged && state.errors.has('ack:' + a.id) ? 'true'
                                                                                   : null);
  }

  // --- Tiles

  function renderTiles() {
    $('kpis-empty').hidden = state.kpis.length > 0;
    reconcile($('tiles'), state.kpis, (k) => k.id, createTile, updateTile);
  }

  function createTile(k) {
    return h('a', {class: 'tile', href: '#chart-' + encodeURIComponent(k.id), 'data-kpi': k.id},
             h('div', {class: 'tile-head'}, h('span', {class: 'badge tile-status'}),
               h('span', {class: 'tile-since'})),
             h('h3', {class: 'tile-name'}),
             h('div', {class: 'tile-value'}, h('span', {class: 'num'}),
               h('span', {class: 'unit'})),
             h('div', {class: 'tile-band'}),
             h('div', {class: 'tile-foot'}, h('span', {class: 'tile-owner'}),
               h('span', {class: 'tile-baseline'})));
  }

  function updateTile(el, k) {
    setAttr(el, 'data-status', k.status);
    setAttr(el, 'class', 'tile ' + statusClass(k.status));
    setAttr(el, 'title', [k.description, k.query, DIRECTION_TEXT[k.direction]]
        .filter(Boolean).join('\n'));
    const badge = el.querySelector('.tile-status');
    setText(badge, statusLabel(k.status));
    setAttr(badge, 'class', 'badge tile-status ' + statusClass(k.status));
    const since = parseTime(k.since);
    setText(el.querySelector('.tile-since'), since ? 'for ' + duration(Date.now() - since) : '');
    setAttr(el.querySelector('.tile-since'), 'title', since ? 'since ' + when(since) : null);
    setText(el.querySelector('.tile-name'), k.name || k.id);
    setText(el.querySelector('.num'), formatNumber(k.value));
    setText(el.querySelector('.unit'), isNum(k.value) && k.unit ? k.unit : '');
    setText(el.querySelector('.tile-band'), bandText(k));
    setText(el.querySelector('.tile-owner'), k.owner || 'no owner');
    const b = k.baseline;
    setText(el.querySelector('.tile-baseline'),
            b && isNum(b.lower) && isNum(b.upper)
                ? 'normal ' + formatNumber(b.lower) + '–' + withUnit(b.upper, k.unit) +
                      (b.trusted ? '' : ' (learning)')
                : '');
  }

  // --- Charts

  function renderChartCards() {
    reconcile($('charts'), state.kpis, (k) => k.id, createChartCard, updateChartCard);
    for (const b of $('range').querySelectorAll('button')) {
      setAttr(b, 'aria-pressed', b.dataset.range === state.range ? 'true' : 'false');
    }
  }

  const resizer = 'ResizeObserver' in window ? new ResizeObserver((entries) => {
    for (const entry of entries) {
      const width = Math.round(entry.contentRect.width);
      const slo = entry.target.closest('.slo-card');
      if (slo) {
        if (width !== Number(slo.dataset.width)) {
          slo.dataset.width = width;
          drawSloCharts(slo);
        }
        continue;
      }
      const card = entry.target.closest('.chart-card');
      if (card && width !== Number(card.dataset.width)) {
        card.dataset.width = width;
        drawChart(card);
      }
    }
  }) : null;

  function createChartCard(k) {
    const plot = h('div', {class: 'chart-plot'}, h('div', {class: 'chart-empty'}, 'Loading…'));
    const card = h('article', {class: 'chart-card', id: 'chart-' + k.id, 'data-kpi': k.id},
                   h('header', {class: 'chart-head'},
                     h('span', {class: 'badge chart-status'}),
                     h('h3', {class: 'chart-name'}),
                     h('span', {class: 'chart-value'})),
                   plot);
    if (resizer) resizer.observe(plot);
    return card;
  }

  function updateChartCard(card, k) {
    const badge = card.querySelector('.chart-status');
    setText(badge, statusLabel(k.status));
    setAttr(badge, 'class', 'badge chart-status ' + statusClass(k.status));
    setText(card.querySelector('.chart-name'), k.name || k.id);
    setText(card.querySelector('.chart-value'), withUnit(k.value, k.unit));
  }

  async function refreshCharts(force) {
    if (state.chartsBusy) {
      state.chartsAgain = true;  // e.g. the range changed meanwhile: once more when done
      return;
    }
    state.chartsBusy = true;
    try {
      for (const k of state.kpis) {
        let c = state.charts.get(k.id);
        if (!c) {
          c = {};
          state.charts.set(k.id, c);
        }
        const due = force || !c.data || c.range !== state.range || c.status !== k.status ||
                    c.since !== k.since || Date.now() - c.fetched > CHART_MS;
        if (!due) continue;
        // 240 steps ending exactly now, so the line ends with the current value.
        const end = Date.now() / 1000;
        const start = end - RANGES[state.range];
        const step = RANGES[state.range] / 240;
        const id = encodeURIComponent(k.id);
        const [series, detail] = await Promise.all([
          api('/api/v1/kpis/' + id + '/series?start=' + start.toFixed(3) + '&end=' +
              end.toFixed(3) + '&step=' + step),
          api('/api/v1/kpis/' + id + '?history=' + HISTORY_LIMIT),
        ]);
        Object.assign(c, {data: series, history: detail.history || [], range: state.range,
                          status: k.status, since: k.since, fetched: Date.now()});
        const card = $('chart-' + k.id);
        if (card) drawChart(card);
      }
    } catch (e) {
      // The next poll reports a connection problem; a KPI removed by a reload drops out.
    } finally {
      state.chartsBusy = false;
      if (state.chartsAgain) {
        state.chartsAgain = false;
        refreshCharts(false);
      }
    }
  }

  // Nice axis steps: 1, 2 or 5 times a power of ten.
  function niceStep(span, count) {
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }

  const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
                      345600, 604800, 1209600].map((sec) => sec * 1000);

  // Points [[unix seconds, value|null], ...] -> an SVG path with gaps at nulls; `step` draws
  // a staircase (thresholds change at an instant).
  function linePath(points, x, y, step) {
    let d = '';
    let pen = false;
    let lastY = 0;
    for (const [t, v] of points) {
      if (!isNum(v)) {
        pen = false;
        continue;
      }
      const px = x(t * 1000).toFixed(1), py = y(v).toFixed(1);
      if (!pen) d += 'M' + px + ',' + py;
      else if (step) d += 'H' + px + (py !== lastY ? 'V' + py : '');
      else d += 'L' + px + ',' + py;
      pen = true;
      lastY = py;
    }
    return d;
  }

  // The area between two point lists of the same timestamps, split where either is null.
  function bandPath(lower, upper, x, y) {
    let d = '';
    let seg = [];
    const flush = () => {
      if (seg.length > 1) {
        d += 'M' + seg.map((p) => x(p[0]).toFixed(1) + ',' + y(p[2]).toFixed(1)).join('L');
        d += 'L' + seg.reverse().map((p) => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1))
                          .join('L') + 'Z';
      }
      seg = [];
    };
    const lowerAt = new Map(lower.map(([t, v]) => [t, v]));
    for (const [t, hi] of upper) {
      const lo = lowerAt.get(t);
      if (isNum(lo) && isNum(hi)) seg.push([t * 1000, lo, hi]);
      else flush();
    }
    flush();
    return d;
  }

  // Spans [from, to, status] (ms) where the KPI was in crit or warn, from its status history.
  function breachSpans(history, end) {
    const spans = [];
    for (let i = 0; i < history.length; ++i) {
      const st = history[i].status;
      if (st !== 'crit' && st !== 'warn') continue;
      const from = parseTime(history[i].time);
      const to = i + 1 < history.length ? parseTime(history[i + 1].time) : end;
      if (from !== null && to !== null && to > from) spans.push([from, to, st]);
    }
    return spans;
  }

  function drawChart(card) {
    const k = state.kpis.find((x) => 'chart-' + x.id === card.id);
    const c = k && state.charts.get(k.id);
    const plot = card.querySelector('.chart-plot');
    if (!k || !c || !c.data) return;
    const data = c.data;
    const width = Math.max(320, Math.round(plot.clientWidth || 560));
    const height = 200;
    const m = {l: 52, r: 78, t: 12, b: 24};
    const pw = width - m.l - m.r, ph = height - m.t - m.b;
    const t0 = data.start * 1000, t1 = Math.max(data.end * 1000, t0 + 1);

    const thresholds = Object.entries(data.thresholds || {})
        .filter(([, pts]) => pts.some(([, v]) => isNum(v)));
    const ys = [];
    const collect = (pts) => { for (const [, v] of pts || []) if (isNum(v)) ys.push(v); };
    collect(data.value);
    collect(data.baseline && data.baseline.lower);
    collect(data.baseline && data.baseline.upper);
    for (const [, pts] of thresholds) collect(pts);

    const root = s('svg', {class: 'chart', width, height, viewBox: '0 0 ' + width + ' ' + height,
                           role: 'img',
                           'aria-label': (k.name || k.id) + ', last ' + state.range});
    if (!data.value.some(([, v]) => isNum(v))) {
      s('text', {x: m.l + pw / 2, y: m.t + ph / 2, class: 'no-data', 'text-anchor': 'middle',
                 text: 'No data in the last ' + state.range}, root);
    }
    if (ys.length === 0) {
      plot.replaceChildren(root);
      return;
    }
    const {lo, hi, step} = niceRange(ys, true);
    const x = (t) => m.l + (t - t0) / (t1 - t0) * pw;
    const y = (v) => m.t + (hi - v) / (hi - lo) * ph;
    drawGrid(root, ticks(lo, hi, step), y, m, pw,
             (v) => formatNumber(Math.abs(v) < step / 1e6 ? 0 : v));

    // Breach periods behind everything.
    const breaches = s('g', {class: 'breaches'}, root);
    for (const [from, to, st] of breachSpans(c.history, c.fetched || Date.now())) {
      const a = Math.max(x(from), m.l), b = Math.min(x(to), m.l + pw);
      if (b <= a) continue;
      s('rect', {x: a.toFixed(1), y: m.t, width: Math.max(1.5, b - a).toFixed(1), height: ph,
                 class: 'breach breach-' + st}, breaches);
    }

    // Baseline band and center.
    if (data.baseline) {
      const band = bandPath(data.baseline.lower || [], data.baseline.upper || [], x, y);
      if (band) s('path', {d: band, class: 'baseline-band'}, root);
      const center = linePath(data.baseline.center || [], x, y, false);
      if (center) s('path', {d: center, class: 'baseline-center'}, root);
    }

    // Thresholds, labelled at the right edge (labels pushed apart so they stay readable).
    const labels = [];
    for (const [name, pts] of thresholds) {
      const level = name.replace(/_(low|high)$/, '');
      s('path', {d: linePath(pts, x, y, true), class: 'threshold threshold-' + level}, root);
      const last = [...pts].reverse().find(([, v]) => isNum(v));
      if (last) labels.push({y: y(last[1]), level, text: name.replace('_', ' ') + ' ' +
                                                          formatNumber(last[1])});
    }
    spreadLabels(labels);
    for (const l of labels) {
      s('text', {x: m.l + pw + 6, y: l.y.toFixed(1), dy: '0.32em',
                 class: 'threshold-label threshold-' + l.level, text: l.text}, root);
    }

    // The value.
    s('path', {d: linePath(data.value, x, y, false), class: 'value-line'}, root);
    const lastValue = [...data.value].reverse().find(([, v]) => isNum(v));
    if (lastValue) {
      s('circle', {cx: x(lastValue[0] * 1000).toFixed(1), cy: y(lastValue[1]).toFixed(1), r: 3,
                   class: 'value-dot ' + statusClass(k.status)}, root);
    }

    drawTimeAxis(root, t0, t1, x, m, pw, ph);
    addHover(root, t0, t1, x, m, pw, ph,
             data.value.filter(([, v]) => isNum(v)).map(([t, v]) => ({
               t: t * 1000, y: y(v), text: when(t * 1000) + '  ' + withUnit(v, k.unit)})));

    plot.replaceChildren(root);
  }

  // Chart pieces shared by the KPI and SLO charts.

  // A y range over `ys` on round steps; `pad` leaves room above and below (never below 0 for
  // values that are not).
  function niceRange(ys, pad) {
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (lo === hi) {
      const d = Math.abs(lo) * 0.1 || 1;
      lo -= d;
      hi += d;
    }
    if (pad) {
      const padding = (hi - lo) * 0.08;
      const nonNegative = lo >= 0;
      lo -= padding;
      hi += padding;
      if (nonNegative && lo < 0) lo = 0;
    }
    const step = niceStep(hi - lo, 4);
    return {lo: Math.floor(lo / step) * step, hi: Math.ceil(hi / step) * step, step};
  }

  // lo, lo + step, ... up to hi.
  function ticks(lo, hi, step) {
    const out = [];
    for (let v = lo; v <= hi + step / 2; v += step) out.push(v);
    return out;
  }

  // Horizontal grid lines at `values` with y labels at the left.
  function drawGrid(root, values, y, m, pw, format) {
    const grid = s('g', {class: 'grid'}, root);
    for (const v of values) {
      const py = y(v).toFixed(1);
      s('line', {x1: m.l, x2: m.l + pw, y1: py, y2: py}, grid);
      s('text', {x: m.l - 6, y: py, dy: '0.32em', 'text-anchor': 'end', class: 'axis',
                 text: format(v)}, grid);
    }
  }

  // Labels [{y}, ...] moved down where they would overlap, top to bottom.
  function spreadLabels(labels) {
    labels.sort((a, b) => a.y - b.y);
    for (let i = 1; i < labels.length; ++i) {
      labels[i].y = Math.max(labels[i].y, labels[i - 1].y + 11);
    }
  }

  // The time axis, ticks on round local times.
  function drawTimeAxis(root, t0, t1, x, m, pw, ph) {
    const span = t1 - t0;
    const tick = TIME_STEPS.find((st) => span / st <= 7) || TIME_STEPS[TIME_STEPS.length - 1];
    const offset = new Date(t0).getTimezoneOffset() * 60000;
    const axis = s('g', {class: 'time-axis'}, root);
    s('line', {x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: 'baseline-axis'}, axis);
    for (let t = Math.ceil((t0 - offset) / tick) * tick + offset; t <= t1; t += tick) {
      const px = x(t).toFixed(1);
      s('line', {x1: px, x2: px, y1: m.t + ph, y2: m.t + ph + 4}, axis);
      const d = new Date(t);
      const label = tick > 2 * 86400000 ? d.getDate() + ' ' + MONTHS[d.getMonth()]
          : tick >= 86400000 ? WEEKDAYS[d.getDay()] + ' ' + d.getDate() : clock(t);
      s('text', {x: px, y: m.t + ph + 16, 'text-anchor': 'middle', class: 'axis', text: label},
        axis);
    }
  }

  // Hover: a crosshair at the point nearest the mouse, points [{t (ms), y (px), text}, ...].
  function addHover(root, t0, t1, x, m, pw, ph, points) {
    const hover = s('g', {class: 'hover', visibility: 'hidden'}, root);
    const hline = s('line', {y1: m.t, y2: m.t + ph}, hover);
    const hdot = s('circle', {r: 3.5}, hover);
    const hbox = s('rect', {rx: 4, height: 20}, hover);
    const htext = s('text', {dy: '0.32em'}, hover);
    const catcher = s('rect', {x: m.l, y: m.t, width: pw, height: ph, class: 'catcher'}, root);
    catcher.addEventListener('pointermove', (ev) => {
      if (points.length === 0) return;
      const box = root.getBoundingClientRect();
      const t = t0 + (ev.clientX - box.left - m.l) / pw * (t1 - t0);
      let best = points[0];
      for (const p of points) {
        if (Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
      }
      const px = x(best.t), py = best.y;
      setAttrs(hline, {x1: px, x2: px});
      setAttrs(hdot, {cx: px, cy: py});
      htext.textContent = best.text;
      const w = htext.getComputedTextLength() + 12;
      const bx = px + 8 + w > m.l + pw ? px - 8 - w : px + 8;
      const by = clamp(py - 10, m.t, m.t + ph - 20);
      setAttrs(hbox, {x: bx, y: by, width: w});
      setAttrs(htext, {x: bx + 6, y: by + 10});
      hover.setAttribute('visibility', 'visible');
    });
    catcher.addEventListener('pointerleave', () => hover.setAttribute('visibility', 'hidden'));
  }

  // --- SLOs

  // The tracker's statuses as the KPI colors show them; the text says which it is.
  const SLO_STATUS_CLASS = {ok: 'ok', warning: 'warn', critical: 'crit', exhausted: 'crit',
                            no_data: 'no_data'};
  function sloStatusClass(status) { return statusClass(SLO_STATUS_CLASS[status] || 'no_data'); }

  // SLIs sit just below 100%: cut (never rounded up to 100) to three decimals.
  function formatSli(v) {
    if (!isNum(v)) return '–';
    return String(Math.floor(v * 1000 + 1e-6) / 1000) + '%';
  }
  // A budget fraction as a percentage, e.g. "42.1%", "−12%".
  function formatBudget(fraction) {
    if (!isNum(fraction)) return '–';
    const pct = fraction * 100;
    return (pct < 0 ? '\u2212' + formatNumber(-pct) : formatNumber(pct)) + '%';
  }
  function formatBurn(v) { return isNum(v) ? formatNumber(v) + '\u00d7' : '–'; }
  function windowText(o) {
    return o.calendar ? 'this ' + o.window : o.window + ' rolling';
  }

  function renderSlos() {
    $('slos-section').hidden = state.slos.length === 0;
    setText($('slos-count'), state.slos.length || '');
    reconcile($('slos'), state.slos, (o) => o.id, createSlo, updateSlo);
  }

  function createSlo(o) {
    const figure = (cls, label) => h('div', {class: 'slo-figure ' + cls},
                                     h('span', {class: 'label'}, label),
                                     h('span', {class: 'num'}));
    const card = h('article', {class: 'slo-card', id: 'slo-' + o.id, 'data-slo': o.id},
                   h('header', {class: 'slo-head'},
                     h('span', {class: 'badge slo-status'}),
                     h('h3', {class: 'slo-name'}),
                     h('button', {type: 'button', class: 'slo-alerts', 'data-action': 'slo-alerts',
                                  'data-slo': o.id})),
                   h('div', {class: 'slo-meta'}),
                   h('div', {class: 'slo-figures'},
                     figure('slo-sli', 'SLI'),
                     figure('slo-budget', 'budget left'),
                     figure('slo-burn-1h', 'burn 1h'),
                     figure('slo-burn-6h', 'burn 6h')),
                   h('div', {class: 'slo-exhaustion'}),
                   h('div', {class: 'slo-error'}),
                   h('div', {class: 'chart-plot slo-plot slo-budget-plot'},
                     h('div', {class: 'chart-empty'}, 'Loading…')),
                   h('div', {class: 'chart-plot slo-plot slo-burn-plot'}));
    if (resizer) {
      for (const plot of card.querySelectorAll('.slo-plot')) resizer.observe(plot);
    }
    return card;
  }

  function updateSlo(card, o) {
    setAttr(card, 'data-status', o.status);
    setAttr(card, 'class', 'slo-card ' + sloStatusClass(o.status));
    const q = o.query || {};
    const queryText = o.sli_type === 'time_slices'
        ? 'KPI ' + q.kpi + ' good while ' + (q.good || []).join(', ')
        : Object.entries(q).map(([k, v]) => k + ': ' + v).join('\n');
    setAttr(card, 'title', [o.description, queryText].filter(Boolean).join('\n'));
    const badge = card.querySelector('.slo-status');
    setText(badge, statusLabel(o.status));
    setAttr(badge, 'class', 'badge slo-status ' + sloStatusClass(o.status));
    setText(card.querySelector('.slo-name'), o.name || o.id);

    const firing = state.alerts.filter((a) => a.slo === o.id).length;
    const link = card.querySelector('.slo-alerts');
    setText(link, firing ? firing + ' firing alert' + (firing > 1 ? 's' : '') : 'no alert firing');
    link.disabled = firing === 0;
    setAttr(link, 'data-firing', firing);

    const meta = ['objective ' + formatNumber(o.objective) + '% over ' + windowText(o),
                  o.owner || 'no owner'];
    const evaluated = parseTime(o.evaluated_at);
    meta.push(evaluated ? 'evaluated ' + when(evaluated) : 'not evaluated yet');
    setText(card.querySelector('.slo-meta'), meta.join(' · '));

    const rates = o.burn_rates || {};
    const budget = o.budget || {};
    setText(card.querySelector('.slo-sli .num'), formatSli(o.sli));
    setText(card.querySelector('.slo-budget .num'), formatBudget(budget.remaining));
    setAttr(card.querySelector('.slo-budget'), 'data-out',
            isNum(budget.remaining) && budget.remaining <= 0 ? 'true' : null);
    for (const w of ['1h', '6h']) {
      const el = card.querySelector('.slo-burn-' + w);
      setText(el.querySelector('.num'), formatBurn(rates[w]));
      // Above 1 the budget runs out before the window ends.
      setAttr(el, 'data-fast', isNum(rates[w]) && rates[w] > 1 ? 'true' : null);
    }
    // Only while some budget is left: once spent, "budget left" already says so.
    const ex = isNum(budget.remaining) && budget.remaining > 0 ? o.exhaustion || {} : {};
    const lasts = ['1h', '6h'].filter((w) => isNum(ex[w]) && ex[w] > 0)
        .map((w) => duration(ex[w] * 1000) + ' at the ' + w + ' burn rate');
    setText(card.querySelector('.slo-exhaustion'),
            lasts.length ? 'budget spent in ' + lasts.join(', ') : '');
    setText(card.querySelector('.slo-error'), o.error || '');
  }

  async function refreshSloCharts(force) {
    if (state.sloChartsBusy) return;  // the next poll catches up
    state.sloChartsBusy = true;
    try {
      for (const o of state.slos) {
        let c = state.sloCharts.get(o.id);
        if (!c) {
          c = {};
          state.sloCharts.set(o.id, c);
        }
        // History is hourly: redrawn when the status changes, else every CHART_MS.
        const due = force || !c.data || c.status !== o.status || Date.now() - c.fetched > CHART_MS;
        if (!due) continue;
        const data = await api('/api/v1/slos/' + encodeURIComponent(o.id));
        Object.assign(c, {data, status: o.status, fetched: Date.now()});
        const card = $('slo-' + o.id);
        if (card) drawSloCharts(card);
      }
      for (const id of [...state.sloCharts.keys()]) {
        if (!state.slos.some((o) => o.id === id)) state.sloCharts.delete(id);
      }
    } catch (e) {
      // The next poll reports a connection problem; an SLO removed by a reload drops out.
    } finally {
      state.sloChartsBusy = false;
    }
  }

  function drawSloCharts(card) {
    const c = state.sloCharts.get(card.dataset.slo);
    if (!c || !c.data) return;
    drawBudgetChart(card.querySelector('.slo-budget-plot'), c.data);
    drawBurnChart(card.querySelector('.slo-burn-plot'), c.data);
  }

  // Points [[unix seconds, v|null], ...] scaled by `f`.
  function scaled(points, f) {
    return (points || []).map(([t, v]) => [t, isNum(v) ? v * f : null]);
  }

  // History is hourly: the figure of the latest evaluation ends the line, so the chart ends
  // where the card's numbers are.
  function withCurrent(points, o, value) {
    const at = parseTime(o.evaluated_at);
    const last = points.length ? points[points.length - 1][0] * 1000 : -Infinity;
    if (at === null || !isNum(value) || at <= last) return points;
    return [...points, [at / 1000, value]];
  }

  // An SLO chart's frame: the window on x, lo to hi on y.
  function sloFrame(plot, o, lo, hi, label) {
    const width = Math.max(320, Math.round(plot.clientWidth || 480));
    const height = 170;
    const m = {l: 52, r: 14, t: 12, b: 24};
    const pw = width - m.l - m.r, ph = height - m.t - m.b;
    const t0 = parseTime(o.window_start) || Date.now() - 86400000;
    const t1 = Math.max(parseTime(o.window_end) || Date.now(), t0 + 1);
    const root = s('svg', {class: 'chart', width, height, viewBox: '0 0 ' + width + ' ' + height,
                           role: 'img', 'aria-label': label});
    const x = (t) => m.l + (t - t0) / (t1 - t0) * pw;
    const y = (v) => m.t + (hi - v) / (hi - lo) * ph;
    return {root, m, pw, ph, t0, t1, x, y};
  }

  // The burn-down: budget remaining (%) over the window, 100% at the top, the ideal linear burn
  // (rate 1) from 100% at the window's start to 0% at its end, and a zero line.
  function drawBudgetChart(plot, o) {
    const history = (o.history && o.history.budget_remaining) || [];
    const points = scaled(withCurrent(history, o, (o.budget || {}).remaining), 100);
    const ys = [0, 100];
    for (const [, v] of points) if (isNum(v)) ys.push(v);
    // 100% at the top unless more is left (a budget grows when the window drops bad events).
    const {step} = niceRange(ys, false);
    const top = Math.max(...ys);
    const lo = Math.floor(Math.min(...ys) / step) * step;
    const hi = top > 100 ? Math.ceil(top / step) * step : 100;
    const {root, m, pw, ph, t0, t1, x, y} =
        sloFrame(plot, o, lo, hi, (o.name || o.id) + ': error budget remaining over ' +
                                      windowText(o));
    const values = ticks(lo, hi, step).filter((v) => v <= hi);
    // 100% labelled too, unless it would overprint a tick (0% matters more then).
    if (!values.includes(100) && values.every((v) => Math.abs(y(v) - y(100)) >= 12)) {
      values.push(100);
    }
    drawGrid(root, values, y, m, pw,
             (v) => formatNumber(Math.abs(v) < step / 1e6 ? 0 : v) + '%');
    s('line', {x1: m.l, x2: m.l + pw, y1: y(0).toFixed(1), y2: y(0).toFixed(1),
               class: 'zero-line'}, root);
    s('line', {x1: x(t0).toFixed(1), y1: y(100).toFixed(1), x2: x(t1).toFixed(1),
               y2: y(0).toFixed(1), class: 'ideal-line'}, root);
    s('text', {x: m.l + pw - 4, y: (y(0) - 5).toFixed(1), 'text-anchor': 'end',
               class: 'ideal-label', text: 'ideal burn (1\u00d7)'}, root);
    if (!points.some(([, v]) => isNum(v))) {
      s('text', {x: m.l + pw / 2, y: m.t + ph / 2, class: 'no-data', 'text-anchor': 'middle',
                 text: 'No events in the window yet'}, root);
    }
    s('path', {d: linePath(points, x, y, false), class: 'budget-line'}, root);
    const last = [...points].reverse().find(([, v]) => isNum(v));
    if (last) {
      s('circle', {cx: x(last[0] * 1000).toFixed(1), cy: y(last[1]).toFixed(1), r: 3,
                   class: 'value-dot ' + (last[1] <= 0 ? 'status-crit' : 'status-ok')}, root);
    }
    drawTimeAxis(root, t0, t1, x, m, pw, ph);
    addHover(root, t0, t1, x, m, pw, ph,
             points.filter(([, v]) => isNum(v)).map(([t, v]) => ({
               t: t * 1000, y: y(v), text: when(t * 1000) + '  budget ' + formatBudget(v / 100)})));
    plot.replaceChildren(root);
  }

  // The 1h and 6h burn rates over the window, and each alert's factor as a dashed line labelled
  // with the alert's name and severity.
  function drawBurnChart(plot, o) {
    const hist = o.history || {};
    const rates = o.burn_rates || {};
    const series = ['1h', '6h'].map((w) => [w, withCurrent(hist['burn_rate_' + w] || [], o,
                                                            rates[w])]);
    const alerts = (o.alerts || []).filter((a) => isNum(a.factor));
    const ys = [0, 1];
    for (const [, pts] of series) for (const [, v] of pts) if (isNum(v)) ys.push(v);
    for (const a of alerts) ys.push(a.factor * 1.15);
    const {lo, hi, step} = niceRange(ys, false);
    const {root, m, pw, ph, t0, t1, x, y} =
        sloFrame(plot, o, lo, hi, (o.name || o.id) + ': burn rates over ' + windowText(o));
    drawGrid(root, ticks(lo, hi, step), y, m, pw,
             (v) => formatNumber(Math.abs(v) < step / 1e6 ? 0 : v) + '\u00d7');
    const labels = [];
    for (const a of alerts) {
      const level = a.severity === 'critical' || a.severity === 'error' ? 'crit'
          : a.severity === 'warning' ? 'warn' : 'info';
      const py = y(a.factor).toFixed(1);
      s('line', {x1: m.l, x2: m.l + pw, y1: py, y2: py, class: 'alert-threshold threshold-' + level,
                 'data-alert-name': a.name, 'data-factor': a.factor}, root);
      labels.push({y: y(a.factor) - 4, level, name: a.name,
                   text: a.name + ' \u00b7 ' + a.severity + ' \u00b7 >' + formatNumber(a.factor) +
                         '\u00d7 over ' + a.long_window + ' & ' + a.short_window});
    }
    spreadLabels(labels);
    for (const l of labels) {
      s('text', {x: m.l + 4, y: l.y.toFixed(1), class: 'threshold-label threshold-' + l.level,
                 'data-alert-name': l.name, text: l.text}, root);
    }
    for (const [w, pts] of series) {
      s('path', {d: linePath(pts, x, y, false), class: 'burn-line burn-' + w}, root);
    }
    if (!series.some(([, pts]) => pts.some(([, v]) => isNum(v)))) {
      s('text', {x: m.l + pw / 2, y: m.t + ph / 2, class: 'no-data', 'text-anchor': 'middle',
                 text: 'No events in the window yet'}, root);
    }
    drawTimeAxis(root, t0, t1, x, m, pw, ph);
    const at6h = new Map(series[1][1].map(([t, v]) => [t, v]));
    addHover(root, t0, t1, x, m, pw, ph,
             series[0][1].filter(([, v]) => isNum(v)).map(([t, v]) => ({
               t: t * 1000, y: y(v),
               text: when(t * 1000) + '  1h ' + formatBurn(v) + ' · 6h ' +
                     formatBurn(at6h.get(t))})));
    plot.replaceChildren(root);
  }

  // --- OKRs

  function renderOkrs() {
    const okrs = [...state.okrs].sort((a, b) => {
      if (a.state !== b.state) return a.state === 'draft' ? -1 : 1;
      return (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0);
    });
    $('okrs-empty').hidden = okrs.length > 0;
    const drafts = okrs.filter((o) => o.state === 'draft').length;
    setText($('okrs-count'), okrs.length === 0 ? ''
        : (drafts ? drafts + ' draft' + (drafts > 1 ? 's' : '') + ' · ' : '') +
              (okrs.length - drafts) + ' active');
    reconcile($('okrs'), okrs, (o) => o.id, createOkr, updateOkr);
  }

  function createOkr(o) {
    return h('article', {class: 'okr', 'data-okr': o.id},
             h('header', {class: 'okr-head'},
               h('div', {class: 'okr-title'},
                 h('span', {class: 'badge okr-state'}),
                 h('h3', {class: 'okr-objective'})),
               h('div', {class: 'okr-score'}, h('span', {class: 'score'}),
                 h('span', {class: 'grade'}))),
             h('div', {class: 'okr-meta'}),
             h('ul', {class: 'krs'}),
             h('ul', {class: 'warnings'}),
             h('footer', {class: 'okr-actions'},
               h('div', {class: 'action-note'}),
               h('button', {type: 'button', class: 'btn btn-primary', 'data-action': 'accept',
                            'data-okr': o.id}, 'Accept')));
  }

  function updateOkr(el, o) {
    setAttr(el, 'data-state', o.state);
    const badge = el.querySelector('.okr-state');
    setText(badge, o.state);
    setAttr(badge, 'class', 'badge okr-state state-' + o.state);
    setText(el.querySelector('.okr-objective'), o.objective);
    const score = el.querySelector('.okr-score');
    setAttr(score, 'class', 'okr-score grade-' + o.grade);
    setText(score.querySelector('.score'), isNum(o.score) ? o.score.toFixed(2) : '–');
    setText(score.querySelector('.grade'), o.grade || '');

    const kpi = state.kpis.find((k) => k.id === o.kpi);
    const end = parseTime(o.period && o.period.end);
    const meta = [o.owner || 'no owner', 'KPI ' + (kpi ? kpi.name : o.kpi)];
    if (end) meta.push('due ' + day(end - 1));
    const created = parseTime(o.created_at);
    if (created) meta.push('opened ' + when(created));
    const accepted = parseTime(o.accepted_at);
    if (accepted) meta.push('accepted ' + when(accepted));
    setText(el.querySelector('.okr-meta'), meta.join(' · '));

    reconcile(el.querySelector('.krs'), o.key_results || [], (kr) => kr.id, createKr,
              updateKr);
    reconcile(el.querySelector('.warnings'), o.warnings || [], (w) => w,
              (w) => h('li', {class: 'warning'}, w), () => {});

    const button = el.querySelector('button[data-action="accept"]');
    const note = el.querySelector('.action-note');
    const busy = state.inflight.has('accept:' + o.id);
    button.hidden = o.state !== 'draft';
    button.disabled = busy;
    setText(button, busy ? 'Accepting…' : 'Accept');
    setText(note, o.state === 'draft' ? state.errors.get('accept:' + o.id) || ''
                                      : 'active OKR, scored live');
    setAttr(note, 'data-error', o.state === 'draft' && state.errors.has('accept:' + o.id)
                                    ? 'true' : null);
  }

  function createKr() {
    const bar = h('div', {class: 'bar'});
    return h('li', {class: 'kr'},
             h('div', {class: 'kr-line'}, h('span', {class: 'kr-desc'}),
               h('span', {class: 'kr-kind'})),
             h('div', {class: 'progress', role: 'progressbar', 'aria-valuemin': 0,
                       'aria-valuemax': 100}, bar),
             h('div', {class: 'kr-nums'}));
  }

  function updateKr(li, kr) {
    setAttr(li, 'data-met', kr.met ? 'true' : 'false');
    setText(li.querySelector('.kr-desc'), kr.description);
    setText(li.querySelector('.kr-kind'), kr.kind === 'kpi' ? '' : kr.kind);
    const pct = Math.round(clamp(isNum(kr.progress) ? kr.progress : 0, 0, 1) * 100);
    const progress = li.querySelector('.progress');
    setAttr(progress, 'aria-valuenow', pct);
    setAttr(progress, 'aria-label', kr.description);
    // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
    li.querySelector('.bar').style.width = pct + '%';
    let nums;
    if (kr.kind === 'guardrail') {
      nums = 'now ' + withUnit(kr.current, kr.unit) + ' · ' + (kr.met ? 'held' : 'broken');
    } else {
      nums = 'now ' + withUnit(kr.current, kr.unit) + ' · from ' + withUnit(kr.start, kr.unit) +
             ' to ' + withUnit(kr.target, kr.unit) + ' · ' + pct + '%' + (kr.met ? ' · met' : '');
    }
    setText(li.querySelector('.kr-nums'), nums);
  }

  // ---------------------------------------------------------------------------------------------
  // Actions

  async function act(key, request) {
    if (state.inflight.has(key)) return;
    state.inflight.add(key);
    state.errors.delete(key);
    render();
    try {
      await request();
    } catch (e) {
      state.errors.set(key, e.message || String(e));
    } finally {
      state.inflight.delete(key);
    }
    await poll();
  }

  document.addEventListener('click', (ev) => {
    const button = ev.target.closest('button');
    if (!button || button.disabled) return;
    const action = button.dataset.action;
    if (action === 'slo-alerts' || action === 'all-alerts') {
      state.alertSlo = action === 'slo-alerts' ? button.dataset.slo : null;
      renderAlerts();
      if (state.alertSlo) $('alerts-title').scrollIntoView({block: 'start'});
    } else if (action === 'ack') {
      const id = button.dataset.alert;
      act('ack:' + id, () => post('/api/v1/alerts/' + encodeURIComponent(id) + '/ack',
                                  {author: author(), comment: ACK_COMMENT}));
    } else if (action === 'accept') {
      const id = button.dataset.okr;
      act('accept:' + id, () => post('/api/v1/okrs/' + encodeURIComponent(id) + '/accept',
                                     {author: author()}));
    } else if (button.dataset.range && RANGES[button.dataset.range]) {
      state.range = button.dataset.range;
      save('kpid.range', state.range);
      renderChartCards();
      refreshCharts(true);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Start

  state.token = loadToken();
  const tokenInput = $('token');
  if (state.token) {
    tokenInput.value = state.token;
    $('token-box').hidden = false;
  }
  tokenInput.addEventListener('change', () => {
    state.token = tokenInput.value.trim();
    saveToken(state.token);
    poll();
  });

  const authorInput = $('author');
  authorInput.value = load('kpid.author', DEFAULT_AUTHOR);
  authorInput.addEventListener('input', () => save('kpid.author', authorInput.value.trim()));

  // Back in view after a while: do not wait for the next tick.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') poll();
  });

  poll();
})();
