/**
 * The console's browser code: plain ES2017, no framework, no build step. It lives in a TS string so
 * ts-jest and the built dist/ serve the same bytes without a file lookup. Data is rendered with
 * textContent and createElement only (never innerHTML), and every call carries the bearer token
 * kept in sessionStorage. Server-sent events say when to fetch again; polling runs only while the
 * stream is down. Keep it free of backticks and dollar-brace (it sits in a template literal).
 */
export const CONSOLE_JS = String.raw`
(function () {
  'use strict';
  var TOKEN = 'cordon.token';
  var POLL_MS = 5000;
  var STREAM_RETRY_MS = 10000;
  var SEV_RANK = { low: 1, medium: 2, high: 3, critical: 4 };
  var TTLS = [['15m', 900000], ['30m', 1800000], ['1h', 3600000], ['2h', 7200000], ['4h', 14400000], ['8h', 28800000], ['12h', 43200000], ['24h', 86400000]];
  var app = document.getElementById('app');
  var S = { me: null, view: null, sig: '', filters: { severity: '', status: '', q: '' }, sort: { key: 'lastSeen', asc: false }, timer: 0, ticker: 0, enforcers: [], previewed: '', stream: { es: null, retry: 0, live: false }, pending: 0 };

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, kids);
    return el;
  }
  function s(tag, attrs, kids) {
    var el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(el, attrs);
    append(el, kids);
    return el;
  }
  function setAttrs(el, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'text') el.textContent = String(v);
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function append(el, kids) {
    if (kids === undefined || kids === null) return;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (k) {
      if (k === undefined || k === null || k === false) return;
      el.appendChild(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
    });
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  function cls(text) { return String(text).replace(/[^a-z0-9]+/gi, '-').toLowerCase(); }

  // ---------------------------------------------------------------- formatting
  function dur(ms) {
    if (ms === undefined || ms === null || isNaN(ms)) return '';
    var neg = ms < 0; ms = Math.abs(ms);
    var sec = Math.floor(ms / 1000), d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), r = sec % 60;
    var out = d ? d + 'd ' + hr + 'h' : hr ? hr + 'h ' + m + 'm' : m ? m + 'm ' + r + 's' : r + 's';
    return neg ? '-' + out : out;
  }
  function ago(t) { return t ? dur(Date.now() - t) + ' ago' : ''; }
  function when(t) { return t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : ''; }
  function sev(x) { return h('span', { class: 'sev ' + x, text: x }); }
  function badge(x) { return h('span', { class: 'state ' + cls(x), text: x }); }
  function can(role) { var order = ['viewer', 'responder', 'approver']; return S.me && order.indexOf(S.me.role) >= order.indexOf(role); }
  function entityName(incident, key) {
    var e = (incident.entities || []).filter(function (x) { return x.key === key; })[0];
    return e ? (e.name || e.ip || key) : key;
  }

  // ---------------------------------------------------------------- API
  function token() { return sessionStorage.getItem(TOKEN); }
  function api(path, body) {
    var init = { method: body === undefined ? 'GET' : 'POST', headers: { authorization: 'Bearer ' + token() } };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
        if (res.status === 401) { logout('Your token was refused; log in again.'); throw new Error('unauthorized'); }
        if (!res.ok) throw new Error((data && (data.detail || data.message)) || ('HTTP ' + res.status));
        return data;
      });
    });
  }

  // ---------------------------------------------------------------- shell
  var flashBox = h('div', { id: 'flash' });
  var main = h('main', { id: 'main' });
  function flash(text, kind) {
    clear(flashBox);
    if (text) flashBox.appendChild(h('div', { class: 'flash ' + (kind || 'info'), role: 'status', text: text }));
  }
  function shell() {
    clear(app);
    var nav = h('nav', null, [
      h('a', { href: '#/incidents', 'data-nav': 'incidents', text: 'Incidents' }),
      h('a', { href: '#/approvals', 'data-nav': 'approvals' }, ['Approvals', h('span', { class: 'count zero', id: 'n-approvals', text: '0' })]),
      h('a', { href: '#/quarantines', 'data-nav': 'quarantines' }, ['Quarantines', h('span', { class: 'count zero', id: 'n-quarantines', text: '0' })]),
    ]);
    var who = h('div', { class: 'who' }, [
      h('span', { id: 'updates', class: 'updates polling', title: 'how the page learns of changes', text: 'polling' }),
      h('span', { id: 'whoami', text: S.me.name + ' (' + S.me.role + ')' }),
      h('button', { id: 'logout', onclick: function () { logout(''); }, text: 'Log out' }),
    ]);
    app.appendChild(h('header', { class: 'top' }, [h('span', { class: 'brand', text: 'CORDON' }), nav, who]));
    app.appendChild(h('div', { style: null }, [flashBox]));
    app.appendChild(main);
  }
  function setCount(id, n) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = String(n);
    el.className = 'count' + (n ? '' : ' zero');
  }

  function loginView(message) {
    stopPolling();
    dropStream();
    S.stream.live = false;
    clear(app);
    var input = h('input', { id: 'login-token', type: 'password', autocomplete: 'off', placeholder: 'bearer token', 'aria-label': 'bearer token' });
    var err = h('div', { id: 'login-error' });
    if (message) err.appendChild(h('div', { class: 'flash error', text: message }));
    var form = h('form', { class: 'panel login', id: 'login', onsubmit: function (ev) {
      ev.preventDefault();
      var t = input.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN, t);
      start();
    } }, [
      h('h1', { text: 'Cordon console' }),
      h('p', { class: 'muted small', text: 'Paste your bearer token. It stays in this tab (sessionStorage) and is sent only to this server.' }),
      input, err,
      h('button', { class: 'primary', id: 'login-submit', type: 'submit', text: 'Log in' }),
    ]);
    app.appendChild(form);
    input.focus();
  }
  function logout(message) {
    sessionStorage.removeItem(TOKEN);
    S.me = null;
    loginView(message);
  }
  function start() {
    Promise.all([api('/api/me'), api('/api/enforcers').catch(function () { return []; })]).then(function (r) {
      S.me = r[0];
      S.enforcers = Array.isArray(r[1]) ? r[1] : [];
      shell();
      route();
      startPolling();
      connectStream();
    }).catch(function (e) { if (e.message !== 'unauthorized') loginView('Cannot reach the service: ' + e.message); });
  }

  // ---------------------------------------------------------------- routing and polling
  function route() {
    if (!S.me) return;
    var hash = location.hash || '#/incidents';
    var parts = hash.slice(2).split('/');
    var name = parts[0] || 'incidents';
    var arg = parts.slice(1).map(decodeURIComponent).join('/');
    S.view = { name: name, arg: arg };
    S.sig = '';
    flash('');
    Array.prototype.forEach.call(document.querySelectorAll('[data-nav]'), function (a) {
      a.className = a.getAttribute('data-nav') === (name === 'incident' ? 'incidents' : name) ? 'active' : '';
    });
    clear(main);
    main.appendChild(h('p', { class: 'muted', text: 'Loading…' }));
    refresh();
  }
  function refresh() {
    if (!S.me || !S.view) return Promise.resolve();
    var v = S.view;
    var load = VIEWS[v.name] || VIEWS.incidents;
    counts();
    return load(v.arg).then(function (data) {
      if (S.view !== v) return;
      var sig = JSON.stringify(data, function (k, val) { return k === 'until' || k === 'since' ? undefined : val; });
      if (sig === S.sig || editing()) return;
      S.sig = sig;
      PAINT[v.name in PAINT ? v.name : 'incidents'](data, v.arg);
      tick();
    }).catch(function (e) { if (e.message !== 'unauthorized') flash(e.message, 'error'); });
  }
  function counts() {
    api('/api/approvals').then(function (l) { setCount('n-approvals', Array.isArray(l) ? l.length : 0); }).catch(function () {});
    api('/api/quarantines').then(function (l) { setCount('n-quarantines', Array.isArray(l) ? l.filter(live).length : 0); }).catch(function () {});
  }
  /** A person typing a reason must not lose it to a refresh. */
  function editing() {
    var a = document.activeElement;
    if (a && a.closest && a.closest('.decision, .lease-actions, .manual')) return true;
    return Array.prototype.some.call(main.querySelectorAll('textarea, .manual input'), function (t) { return t.value.trim() !== ''; });
  }
  function startPolling() {
    stopPolling();
    S.timer = setInterval(function () { if (!document.hidden) refresh(); }, POLL_MS);
    S.ticker = setInterval(tick, 1000);
  }
  function stopPolling() { clearInterval(S.timer); clearInterval(S.ticker); }

  // ---------------------------------------------------------------- live updates
  /**
   * GET /api/events/stream says when incidents or containment change; the page then fetches its
   * view again. EventSource cannot send the bearer token, so the page trades it for a one-use
   * ticket (POST /api/events/ticket) each time it opens the stream. While the stream is down the
   * page polls, and tries the stream again.
   */
  function connectStream() {
    dropStream();
    if (!S.me || typeof EventSource === 'undefined') return;
    api('/api/events/ticket', {}).then(function (t) {
      if (!S.me) return;
      var es = new EventSource('/api/events/stream?ticket=' + encodeURIComponent(t.ticket));
      S.stream.es = es;
      es.addEventListener('ready', function () { setLive(true); refresh(); });
      es.addEventListener('incident', changed);
      es.addEventListener('containment', changed);
      es.addEventListener('reauth', connectStream);
      es.onerror = function () { if (S.stream.es === es) streamDown(); };
    }).catch(function (e) { if (e.message !== 'unauthorized') streamDown(); });
  }
  function streamDown() {
    dropStream();
    setLive(false);
    S.stream.retry = setTimeout(connectStream, STREAM_RETRY_MS);
  }
  function dropStream() {
    clearTimeout(S.stream.retry);
    if (S.stream.es) { S.stream.es.close(); S.stream.es = null; }
  }
  function setLive(on) {
    var was = S.stream.live;
    S.stream.live = on;
    document.body.setAttribute('data-updates', on ? 'stream' : 'poll');
    var el = document.getElementById('updates');
    if (el) { el.textContent = on ? 'live' : 'polling every ' + POLL_MS / 1000 + ' s'; el.className = 'updates ' + (on ? 'live' : 'polling'); }
    if (on === was && (on || S.timer)) return;
    clearInterval(S.timer);
    S.timer = on ? 0 : setInterval(function () { if (!document.hidden) refresh(); }, POLL_MS);
  }
  /** Changes come in bursts: one fetch for each burst, and none while a person is typing. */
  function changed() {
    if (S.pending) return;
    S.pending = setTimeout(function again() {
      if (editing()) { S.pending = setTimeout(again, 2000); return; }
      S.pending = 0;
      refresh();
    }, 250);
  }
  /** Live countdowns and ages. */
  function tick() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-until]'), function (el) {
      var left = Number(el.getAttribute('data-until')) - Date.now();
      el.textContent = left > 0 ? dur(left) : 'due';
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-since]'), function (el) {
      el.textContent = ago(Number(el.getAttribute('data-since')));
    });
  }
  window.addEventListener('hashchange', route);

  // ---------------------------------------------------------------- loaders
  var VIEWS = {
    incidents: function () { return api('/api/incidents'); },
    incident: function (id) {
      var p = encodeURIComponent(id);
      return Promise.all([
        api('/api/incidents/' + p),
        api('/api/incidents/' + p + '/run').catch(function () { return null; }),
        api('/api/incidents/' + p + '/ledger'),
      ]).then(function (r) { return { incident: r[0], run: r[1], ledger: r[2] }; });
    },
    approvals: function () {
      return api('/api/approvals').then(function (list) {
        return Promise.all(list.map(function (a) {
          return api('/api/approvals/' + encodeURIComponent(a.id) + '/impact?hours=6').catch(function (e) { return { error: e.message }; })
            .then(function (impact) { return { approval: a, impact: impact }; });
        }));
      });
    },
    quarantines: function () { return api('/api/quarantines'); },
  };
  function live(l) { return l.state === 'applied' || l.state === 'pending'; }

  // ---------------------------------------------------------------- incidents list
  function sortValue(i, key) {
    if (key === 'severity') return SEV_RANK[i.severity] * 1000 + i.score;
    if (key === 'root') return entityName(i, i.root).toLowerCase();
    if (key === 'age') return -i.firstSeen;
    return i[key];
  }
  function paintIncidents(list) {
    clear(main);
    var f = S.filters;
    var q = h('input', { id: 'f-q', type: 'search', placeholder: 'filter: entity, id, technique', value: f.q, oninput: function () { f.q = q.value; draw(); } });
    var sevSel = h('select', { id: 'f-severity', 'aria-label': 'minimum severity', onchange: function () { f.severity = sevSel.value; draw(); } },
      [['', 'any severity'], ['medium', 'medium and up'], ['high', 'high and up'], ['critical', 'critical']].map(function (o) { return h('option', { value: o[0], text: o[1], selected: f.severity === o[0] }); }));
    var statusSel = h('select', { id: 'f-status', 'aria-label': 'status', onchange: function () { f.status = statusSel.value; draw(); } },
      ['', 'open', 'containing', 'contained', 'released', 'closed'].map(function (o) { return h('option', { value: o, text: o || 'any status', selected: f.status === o }); }));
    main.appendChild(h('h1', { text: 'Incidents' }));
    main.appendChild(h('div', { class: 'filters' }, [q, sevSel, statusSel]));
    var holder = h('div');
    main.appendChild(holder);
    function draw() {
      var rows = list.filter(function (i) {
        if (f.severity && SEV_RANK[i.severity] < SEV_RANK[f.severity]) return false;
        if (f.status && i.status !== f.status) return false;
        if (f.q) {
          var hay = [i.id, i.root, entityName(i, i.root), i.summary, (i.techniques || []).join(' ')].join(' ').toLowerCase();
          if (hay.indexOf(f.q.toLowerCase()) < 0) return false;
        }
        return true;
      });
      var k = S.sort.key, dir = S.sort.asc ? 1 : -1;
      rows.sort(function (a, b) { var x = sortValue(a, k), y = sortValue(b, k); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
      var cols = [['severity', 'Severity'], ['root', 'Root entity'], ['score', 'Score', 'num'], ['status', 'Status'], ['age', 'Age'], ['lastSeen', 'Last activity']];
      var head = h('tr', null, cols.map(function (c) {
        return h('th', { class: 'sortable' + (c[2] ? ' num' : '') + (S.sort.key === c[0] ? ' sorted' + (S.sort.asc ? ' asc' : '') : ''), 'data-sort': c[0], text: c[1], onclick: function () {
          S.sort = { key: c[0], asc: S.sort.key === c[0] ? !S.sort.asc : false };
          draw();
        } });
      }));
      var body = h('tbody', null, rows.map(function (i) {
        return h('tr', { class: 'link', 'data-id': i.id, onclick: function () { location.hash = '#/incident/' + encodeURIComponent(i.id); } }, [
          h('td', { 'data-label': 'Severity' }, sev(i.severity)),
          h('td', { 'data-label': 'Root', class: 'wrap' }, h('div', null, [h('a', { href: '#/incident/' + encodeURIComponent(i.id), text: entityName(i, i.root) }), h('div', { class: 'muted small', text: i.root })])),
          h('td', { 'data-label': 'Score', class: 'num', text: i.score.toFixed(1) }),
          h('td', { 'data-label': 'Status' }, badge(i.status)),
          h('td', { 'data-label': 'Age', 'data-since': i.firstSeen, text: ago(i.firstSeen) }),
          h('td', { 'data-label': 'Last activity', 'data-since': i.lastSeen, text: ago(i.lastSeen) }),
        ]);
      }));
      clear(holder);
      holder.appendChild(rows.length ? h('table', { class: 'cards incidents' }, [h('thead', null, head), body]) : h('p', { class: 'muted', text: list.length ? 'No incident matches the filter.' : 'No incidents yet.' }));
      holder.appendChild(h('p', { class: 'muted small', text: rows.length + ' of ' + list.length + ' incidents; ' + (S.stream.live ? 'updated live' : 'refreshed every ' + POLL_MS / 1000 + ' s') }));
    }
    draw();
  }

  // ---------------------------------------------------------------- incident page
  function paintIncident(d) {
    var i = d.incident;
    clear(main);
    main.appendChild(h('p', { class: 'small' }, h('a', { href: '#/incidents', text: '← all incidents' })));
    main.appendChild(h('h1', null, [sev(i.severity), ' ', entityName(i, i.root)]));
    main.appendChild(h('p', { id: 'summary', text: i.summary }));
    if (can('responder') && i.status !== 'closed') main.appendChild(closeForm(i));
    main.appendChild(h('div', { class: 'grid panel' }, [
      kv('Incident', i.id), kv('Status', i.status), kv('Score', i.score.toFixed(1)), kv('Confidence', Math.round(i.confidence * 100) + '%'),
      kv('First seen', when(i.firstSeen)), kv('Last seen', when(i.lastSeen)),
      kv('Flows', i.counters.denied + ' denied, ' + i.counters.allowed + ' allowed'), kv('Anomalies', i.counters.anomalies),
    ]));
    main.appendChild(h('h2', { text: 'Attack path' }));
    main.appendChild(h('div', { class: 'graph', id: 'graph' }, graph(i)));
    main.appendChild(h('h2', { text: 'ATT&CK techniques' }));
    main.appendChild(h('div', { id: 'techniques' }, (i.techniques || []).length ? i.techniques.map(function (t) {
      return h('a', { class: 'chip', href: 'https://attack.mitre.org/techniques/' + t.replace('.', '/') + '/', target: '_blank', rel: 'noopener noreferrer', text: t });
    }) : h('span', { class: 'muted', text: 'none' })));
    main.appendChild(h('h2', { text: 'Playbook run' }));
    main.appendChild(runSection(d.run));
    main.appendChild(h('h2', { text: 'Evidence' }));
    main.appendChild(evidenceTable(i));
    main.appendChild(h('h2', { text: 'Ledger' }));
    main.appendChild(ledgerTable(d.ledger));
  }
  function closeForm(i) {
    var reason = h('textarea', { name: 'reason', placeholder: 'Why close it: resolved, or not an attack (required)', 'aria-label': 'reason' });
    var msg = h('div');
    var form = h('div', { class: 'panel close-incident', id: 'close' }, [reason, h('div', { class: 'actions' }, [
      h('button', { class: 'danger', 'data-action': 'close', onclick: function () {
        var why = reason.value.trim();
        clear(msg);
        if (why.length < 3) { msg.appendChild(h('div', { class: 'flash error', text: 'Say why (at least 3 characters).' })); reason.focus(); return; }
        busy(form, true);
        api('/api/incidents/' + encodeURIComponent(i.id) + '/close', { reason: why }).then(function () {
          flash('Close requested: ' + i.id + ' (later evidence opens a new incident)', 'info');
          S.sig = '';
          refresh();
        }).catch(function (e) { busy(form, false); msg.appendChild(h('div', { class: 'flash error', text: e.message })); });
      }, text: 'Close incident' }),
    ]), msg]);
    return form;
  }
  function kv(k, v) { return h('div', null, [h('div', { class: 'k', text: k }), h('div', { class: 'wrap', text: String(v) })]); }

  /** Layered layout: the root on the left, each hop one column further. */
  function graph(i) {
    var nodes = (i.path && i.path.nodes) || [i.root];
    var edges = (i.path && i.path.edges) || [];
    var depth = {}; depth[i.root] = 0;
    var queue = [i.root];
    while (queue.length) {
      var n = queue.shift();
      edges.forEach(function (e) { if (e.from === n && depth[e.to] === undefined) { depth[e.to] = depth[n] + 1; queue.push(e.to); } });
    }
    var maxDepth = 0;
    nodes.forEach(function (n) { if (depth[n] !== undefined && depth[n] > maxDepth) maxDepth = depth[n]; });
    nodes.forEach(function (n) { if (depth[n] === undefined) depth[n] = maxDepth + 1; });
    var rows = {}, pos = {}, colW = 260, rowH = 96, padX = 90, padY = 48;
    nodes.forEach(function (n) { var c = depth[n]; rows[c] = (rows[c] || 0) + 1; pos[n] = { x: padX + c * colW, y: padY + (rows[c] - 1) * rowH }; });
    var cols = Object.keys(rows).length, tallest = Math.max.apply(null, Object.keys(rows).map(function (k) { return rows[k]; }));
    var width = padX * 2 + (cols - 1) * colW, height = padY * 2 + (tallest - 1) * rowH + 20;
    var root = s('svg', { viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img', 'aria-label': 'attack path graph' });
    root.appendChild(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }))));
    var byRole = {};
    (i.entities || []).forEach(function (e) { byRole[e.key] = e; });
    edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      if (!a || !b) return;
      var r = 20, forward = b.x > a.x;
      var x1 = a.x + (forward ? r : 0), y1 = a.y + (forward ? 0 : r), x2 = b.x - (forward ? r + 2 : 0), y2 = b.y - (forward ? 0 : r + 2);
      var mx = (x1 + x2) / 2, my = (y1 + y2) / 2 - (forward ? 0 : 40);
      var d = forward ? 'M ' + x1 + ' ' + y1 + ' C ' + mx + ' ' + y1 + ', ' + mx + ' ' + y2 + ', ' + x2 + ' ' + y2 : 'M ' + x1 + ' ' + y1 + ' Q ' + (mx + 60) + ' ' + my + ', ' + x2 + ' ' + y2;
      var ports = (e.ports || []).join(',');
      var label = 'port ' + ports + ' · ' + e.denied + ' denied' + (e.allowed ? ' · ' + e.allowed + ' allowed' : '');
      var kinds = (e.anomalies || []).join(', ');
      root.appendChild(s('g', { class: 'edge' + (e.denied ? '' : ' allowed'), 'data-from': e.from, 'data-to': e.to }, [
        s('path', { d: d, 'marker-end': 'url(#arrow)' }),
        s('text', { x: mx, y: (forward ? (y1 + y2) / 2 : my) - 8, 'text-anchor': 'middle', text: label }),
        kinds ? s('text', { x: mx, y: (forward ? (y1 + y2) / 2 : my) + 14, 'text-anchor': 'middle', text: 'anomaly: ' + kinds }) : null,
        s('title', { text: e.from + ' → ' + e.to + ': ' + label + (kinds ? '; anomalies ' + kinds : '') + '; services ' + (e.services || []).join(', ') }),
      ]));
    });
    nodes.forEach(function (n) {
      var p = pos[n], e = byRole[n] || {};
      var name = entityName(i, n);
      root.appendChild(s('g', { class: 'node ' + (n === i.root ? 'root' : e.position || 'target'), 'data-key': n }, [
        s('circle', { cx: p.x, cy: p.y, r: 18 }),
        s('text', { x: p.x, y: p.y + 34, 'text-anchor': 'middle', text: name.length > 30 ? name.slice(0, 29) + '…' : name }),
        s('text', { class: 'role', x: p.x, y: p.y + 48, 'text-anchor': 'middle', text: [e.position, e.role && e.role !== 'unknown' ? e.role : '', e.ip].filter(Boolean).join(' · ') }),
        s('title', { text: n }),
      ]));
    });
    return root;
  }

  function runSection(run) {
    if (!run) return h('p', { class: 'muted', id: 'run', text: 'No playbook run for this incident (no playbook matched, or containment is off).' });
    var list = h('ol', { class: 'steps', id: 'run' }, run.steps.map(function (st) {
      var extra = (st.targets || []).map(function (t) {
        return h('div', { class: 'small' }, [h('span', { class: 'chip', text: t.name || t.key }), badge(t.state), t.expiresAt && (t.state === 'applied' || t.state === 'pending') ? h('span', { class: 'muted', text: ' expires ' + when(t.expiresAt) }) : null]);
      });
      return h('li', { 'data-step': st.id, 'data-state': st.state }, [
        h('span', { class: 'idx', text: String(st.index + 1) }),
        h('div', { class: 'what' }, [h('strong', { text: st.id }), ' ', h('span', { class: 'muted small', text: st.type + (st.dryRun ? ' (dry run)' : '') }), h('div', { class: 'small', text: st.summary }),
          st.detail ? h('div', { class: 'muted small', text: st.detail }) : null,
          st.approvalId && st.state === 'waiting' ? h('a', { class: 'small', href: '#/approvals', text: 'decide on the approvals page →' }) : null].concat(extra)),
        badge(st.state),
      ]);
    }));
    return h('div', { class: 'panel' }, [h('div', { class: 'muted small', text: run.playbookId + ', started ' + when(run.startedAt) }), list]);
  }

  function evidenceTable(i) {
    var items = (i.evidence && i.evidence.items) || [];
    if (!items.length) return h('p', { class: 'muted', text: 'No evidence kept.' });
    var rows = items.slice().sort(function (a, b) { return b.weight - a.weight; }).map(function (e) {
      return h('tr', null, [
        h('td', { 'data-label': 'Rule', text: e.rule }),
        h('td', { 'data-label': 'From → to', class: 'wrap', text: entityName(i, e.src) + (e.dst ? ' → ' + entityName(i, e.dst) : '') }),
        h('td', { 'data-label': 'Port', text: e.port !== undefined ? e.port + (e.service ? ' (' + e.service + ')' : '') : (e.anomaly || '') }),
        h('td', { 'data-label': 'Count', class: 'num', text: e.count }),
        h('td', { 'data-label': 'Weight', class: 'num', text: Number(e.weight).toFixed(2) }),
        h('td', { 'data-label': 'Why', class: 'wrap', text: e.reason }),
        h('td', { 'data-label': 'Last seen', text: when(e.lastSeen) }),
      ]);
    });
    var note = i.evidence.dropped ? h('p', { class: 'muted small', text: i.evidence.dropped + ' more items not kept (counted in the totals: ' + i.evidence.total + ' events)' }) : null;
    return h('div', null, [h('table', { class: 'cards', id: 'evidence' }, [h('thead', null, h('tr', null, ['Rule', 'From → to', 'Port', 'Count', 'Weight', 'Why', 'Last seen'].map(function (c) { return h('th', { text: c }); }))), h('tbody', null, rows)]), note]);
  }

  function ledgerTable(records) {
    if (!records || !records.length) return h('p', { class: 'muted', id: 'ledger', text: 'No ledger records for this incident yet.' });
    var rows = records.map(function (r) {
      return h('tr', { 'data-action': r.action }, [
        h('td', { 'data-label': 'Seq', class: 'num', text: r.seq }),
        h('td', { 'data-label': 'At', text: when(r.at) }),
        h('td', { 'data-label': 'Action' }, badge(r.action)),
        h('td', { 'data-label': 'Actor', class: 'wrap', text: r.actor }),
        h('td', { 'data-label': 'Target', class: 'wrap', text: r.target }),
        h('td', { 'data-label': 'Reason', class: 'wrap', text: r.reason }),
        h('td', { 'data-label': 'Hash', class: 'muted small', title: r.hash, text: r.hash.slice(0, 12) }),
      ]);
    });
    return h('table', { class: 'cards', id: 'ledger' }, [h('thead', null, h('tr', null, ['Seq', 'At', 'Action', 'Actor', 'Target', 'Reason', 'Hash'].map(function (c) { return h('th', { text: c }); }))), h('tbody', null, rows)]);
  }

  // ---------------------------------------------------------------- approvals
  function paintApprovals(list) {
    clear(main);
    main.appendChild(h('h1', { text: 'Pending approvals' }));
    if (!list.length) { main.appendChild(h('p', { class: 'muted', id: 'no-approvals', text: 'Nothing is waiting for a decision.' })); return; }
    list.forEach(function (x) { main.appendChild(approvalCard(x.approval, x.impact)); });
  }
  function approvalCard(a, impact) {
    var card = h('section', { class: 'panel card approval', 'data-approval': a.id });
    var ttl = a.ttlMs;
    card.appendChild(h('h3', { text: a.question }));
    card.appendChild(h('div', { class: 'grid' }, [
      kv('Quarantine', a.targets.map(function (t) { return (t.name || t.key) + (t.ip ? ' (' + t.ip + ')' : ''); }).join(', ') || 'nothing'),
      kv('For', ttl ? dur(ttl) : 'the step TTL'),
      h('div', null, [h('div', { class: 'k', text: 'Deadline' }), h('div', null, [h('span', { class: 'timeleft', 'data-until': a.deadline, text: dur(a.deadline - Date.now()) }), h('span', { class: 'muted small', text: ' then ' + a.onTimeout })])]),
      kv('Approvers', a.approvers.join(', ')),
    ]));
    card.appendChild(h('div', { class: 'small' }, [h('span', { class: 'muted', text: 'Labels: ' })].concat(Object.keys(a.labels || {}).map(function (k) { return h('span', { class: 'chip', text: k + '=' + a.labels[k] }); }))));
    card.appendChild(h('div', { class: 'small' }, [h('span', { class: 'muted', text: 'Incident: ' }), h('a', { href: '#/incident/' + encodeURIComponent(a.incidentId), text: a.incidentId }), h('span', { class: 'muted', text: ' · playbook ' + a.playbookId })]));
    card.appendChild(impactSection(impact));
    if (can('approver')) card.appendChild(decisionForm(a));
    else card.appendChild(h('p', { class: 'muted small', text: 'Only an approver can decide; you are ' + S.me.role + '.' }));
    return card;
  }
  function impactSection(impact) {
    var box = h('div', { class: 'impact' });
    box.appendChild(h('h2', { text: 'Impact: flows this quarantine will cut' }));
    if (!impact || impact.error) { box.appendChild(h('p', { class: 'muted', text: 'No impact preview: ' + ((impact && impact.error) || 'unavailable') })); return box; }
    impact.targets.forEach(function (t) {
      var tot = t.totals;
      box.appendChild(h('p', { class: 'small' }, [h('strong', { text: t.name || t.key }), ' · last ' + impact.hours + ' h: ',
        h('span', { class: 'cut', text: tot.allowed + ' allowed connections will be cut' }), ' (' + tot.out + ' outgoing, ' + tot.in + ' incoming, ' + tot.peers + ' peers); ' + tot.denied + ' already denied.']));
      if (t.overflow > 0) box.appendChild(h('p', { class: 'muted small overflow', text: t.overflow + ' more flows not kept (past the bound of distinct flows per hour)' }));
      if (!t.flows.length) { box.appendChild(h('p', { class: 'muted small', text: 'No flows seen to or from it in that time.' })); return; }
      var shown = t.flows.slice(0, 50);
      function flowTable(rows) {
        return h('table', { class: 'impact-flows compact' }, [
          h('thead', null, h('tr', null, ['', 'Peer', 'Port', 'Verdict', 'Count', 'Last hour'].map(function (c, i) { return h('th', { class: i === 4 ? 'num' : i === 5 ? 'wide' : '', text: c }); }))),
          h('tbody', null, rows.map(function (f) {
            return h('tr', { 'data-verdict': f.verdict }, [
              h('td', { title: f.direction === 'out' ? 'outgoing' : 'incoming', text: f.direction === 'out' ? 'out →' : '← in' }),
              h('td', { class: 'wrap', text: f.peer }),
              h('td', { text: f.port + '/' + f.protocol }),
              h('td', { class: f.verdict === 'allowed' ? 'cut' : 'muted', text: f.verdict === 'allowed' ? 'will be cut' : 'denied' }),
              h('td', { class: 'num', text: f.count }),
              h('td', { class: 'wide', text: when(f.lastSeen).slice(11, 16) + 'Z' }),
            ]);
          })),
        ]);
      }
      box.appendChild(flowTable(shown.slice(0, 8)));
      if (shown.length > 8) box.appendChild(h('details', null, [h('summary', { class: 'small', text: 'show ' + (shown.length - 8) + ' more flows' }), flowTable(shown.slice(8))]));
      var more = t.flows.length - shown.length + t.truncated;
      if (more > 0) box.appendChild(h('p', { class: 'muted small', text: 'and ' + more + ' more flows' }));
    });
    return box;
  }
  function decisionForm(a) {
    var reason = h('textarea', { name: 'reason', placeholder: 'Reason (required): what you checked, who you talked to', 'aria-label': 'reason', required: true });
    var ttl = h('select', { name: 'ttl', 'aria-label': 'quarantine duration' }, [h('option', { value: '', text: 'for ' + (a.ttlMs ? dur(a.ttlMs) : 'the requested TTL') + ' (as requested)' })]
      .concat(TTLS.filter(function (t) { return !a.ttlMs || t[1] < a.ttlMs; }).map(function (t) { return h('option', { value: t[0], text: 'for only ' + t[0] }); })));
    var msg = h('div');
    function decide(kind) {
      return function () {
        var why = reason.value.trim();
        clear(msg);
        if (why.length < 3) { msg.appendChild(h('div', { class: 'flash error', text: 'Say why (at least 3 characters).' })); reason.focus(); return; }
        var body = { reason: why };
        if (kind === 'approve' && ttl.value) body.ttl = ttl.value;
        busy(form, true);
        api('/api/approvals/' + encodeURIComponent(a.id) + '/' + kind, body).then(function (res) {
          reason.value = '';
          flash((kind === 'approve' ? 'Approved' : 'Denied') + ': ' + a.id + ' (' + res.state + ')', 'info');
          S.sig = '';
          refresh();
        }).catch(function (e) { busy(form, false); msg.appendChild(h('div', { class: 'flash error', text: e.message })); });
      };
    }
    var form = h('div', { class: 'decision' }, [reason, h('div', { class: 'actions' }, [
      ttl,
      h('button', { class: 'primary', 'data-action': 'approve', onclick: decide('approve'), text: 'Approve quarantine' }),
      h('button', { class: 'danger', 'data-action': 'deny', onclick: decide('deny'), text: 'Deny' }),
    ]), msg]);
    return form;
  }
  function busy(el, on) { Array.prototype.forEach.call(el.querySelectorAll('button, select, textarea, input'), function (b) { b.disabled = on; }); }

  // ---------------------------------------------------------------- quarantines
  function paintQuarantines(list) {
    clear(main);
    main.appendChild(h('h1', { text: 'Quarantines' }));
    if (can('responder')) main.appendChild(manualForm());
    var active = list.filter(live).sort(function (a, b) { return a.expiresAt - b.expiresAt; });
    var ended = list.filter(function (l) { return !live(l); });
    if (!active.length) main.appendChild(h('p', { class: 'muted', id: 'no-quarantines', text: 'No active quarantine.' }));
    active.forEach(function (l) { main.appendChild(leaseCard(l)); });
    if (ended.length) {
      main.appendChild(h('h2', { text: 'Ended' }));
      main.appendChild(h('table', { class: 'cards', id: 'ended' }, [
        h('thead', null, h('tr', null, ['Target', 'State', 'Enforcer', 'Labels', 'Ledger seq'].map(function (c) { return h('th', { text: c }); }))),
        h('tbody', null, ended.map(function (l) {
          return h('tr', { 'data-target': l.target }, [
            h('td', { 'data-label': 'Target', class: 'wrap', text: l.target }), h('td', { 'data-label': 'State' }, badge(l.state)),
            h('td', { 'data-label': 'Enforcer', text: l.enforcer }), h('td', { 'data-label': 'Labels', class: 'wrap', text: labelText(l.labels) }),
            h('td', { 'data-label': 'Ledger seq', class: 'num', text: l.ledgerSeq }),
          ]);
        })),
      ]));
    }
  }
  /** An incident holding the lease links to it; a person's manual hold (manual.<name>.<when>) names the person. */
  function holderChip(id) {
    if (id.indexOf('manual.') === 0) return h('span', { class: 'chip manual-hold', title: id, text: 'by hand: ' + id.split('.').slice(1, -1).join('.') });
    return h('a', { class: 'chip', href: '#/incident/' + encodeURIComponent(id), text: id });
  }
  /** A responder quarantines an entity by hand: impact preview first, then a TTL, a layer and a reason. */
  function manualForm() {
    var entity = h('input', { name: 'entity', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'entity key: pod:prod/web-1, vm:db-2, ip:10.0.0.5', 'aria-label': 'entity to quarantine' });
    var ttl = h('select', { name: 'ttl', 'aria-label': 'quarantine duration' }, TTLS.map(function (t) { return h('option', { value: t[0], text: 'for ' + t[0], selected: t[0] === '1h' }); }));
    var layer = h('select', { name: 'enforcer', 'aria-label': 'enforcement layer' }, S.enforcers.map(function (n) { return h('option', { value: n, text: n }); }));
    var reason = h('textarea', { name: 'reason', placeholder: 'Reason (required): what you saw, why it cannot wait for a playbook', 'aria-label': 'reason' });
    var preview = h('div', { class: 'preview' });
    var msg = h('div');
    function key() { return entity.value.trim(); }
    function fail(text) { clear(msg); msg.appendChild(h('div', { class: 'flash error', text: text })); }
    function showImpact() {
      clear(msg); clear(preview);
      S.previewed = '';
      if (!key()) { fail('Name the entity to quarantine.'); entity.focus(); return; }
      var k = key();
      preview.appendChild(h('p', { class: 'muted small', text: 'Loading the impact preview…' }));
      api('/api/entities/' + encodeURIComponent(k) + '/impact?hours=6').then(function (impact) {
        clear(preview);
        preview.appendChild(impactSection(impact));
        S.previewed = k;
      }).catch(function (e) { clear(preview); fail(e.message); });
    }
    function submit() {
      var why = reason.value.trim();
      clear(msg);
      if (!key()) { fail('Name the entity to quarantine.'); entity.focus(); return; }
      if (S.previewed !== key()) { showImpact(); fail('Check the impact preview first, then quarantine.'); return; }
      if (why.length < 3) { fail('Say why (at least 3 characters).'); reason.focus(); return; }
      var body = { entity: key(), ttl: ttl.value, reason: why };
      if (layer.value) body.enforcer = layer.value;
      busy(form, true);
      api('/api/quarantines', body).then(function (lease) {
        entity.value = ''; reason.value = ''; S.previewed = '';
        flash('Quarantined by hand: ' + lease.target + ' until ' + when(lease.expiresAt), 'info');
        S.sig = '';
        refresh();
      }).catch(function (e) { busy(form, false); fail(e.message); });
    }
    entity.addEventListener('input', function () { if (S.previewed && S.previewed !== key()) { S.previewed = ''; clear(preview); } });
    var form = h('section', { class: 'panel manual', id: 'manual' }, [
      h('h2', { text: 'Quarantine by hand' }),
      h('p', { class: 'muted small', text: 'The TTL is bounded like an extension; protected entities are refused. Who and why go into the ledger.' }),
      entity,
      h('div', { class: 'actions' }, [h('button', { 'data-action': 'preview', onclick: showImpact, text: 'Preview impact' })]),
      preview, reason,
      h('div', { class: 'actions' }, [ttl, S.enforcers.length > 1 ? layer : null, h('button', { class: 'danger', 'data-action': 'quarantine', onclick: submit, text: 'Quarantine' })]),
      msg,
    ]);
    return form;
  }
  function labelText(labels) { return Object.keys(labels || {}).map(function (k) { return k + '=' + labels[k]; }).join(', '); }
  function leaseCard(l) {
    var card = h('section', { class: 'panel card lease', 'data-target': l.target, 'data-state': l.state });
    card.appendChild(h('h3', null, [l.ref && l.ref.name ? l.ref.name : l.target, ' ', badge(l.state)]));
    card.appendChild(h('div', { class: 'grid' }, [
      h('div', null, [h('div', { class: 'k', text: 'Time left' }), h('div', { class: 'timeleft', 'data-until': l.expiresAt, text: dur(l.expiresAt - Date.now()) })]),
      kv('Expires', when(l.expiresAt)),
      h('div', null, [h('div', { class: 'k', text: 'Holders' }), h('div', null, l.holders.map(holderChip))]),
      kv('Enforcer', l.enforcer), kv('Target', l.target), kv('Ledger seq', l.ledgerSeq),
    ]));
    card.appendChild(h('div', { class: 'small' }, [h('span', { class: 'muted', text: 'Labels: ' })].concat(Object.keys(l.labels).map(function (k) { return h('span', { class: 'chip', text: k + '=' + l.labels[k] }); }))));
    if (can('responder')) card.appendChild(leaseForm(l));
    return card;
  }
  function leaseForm(l) {
    var reason = h('textarea', { name: 'reason', placeholder: 'Reason (required)', 'aria-label': 'reason' });
    var ttl = h('select', { name: 'ttl', 'aria-label': 'extend to' }, TTLS.map(function (t) { return h('option', { value: t[0], text: 'extend to ' + t[0] + ' from now' }); }));
    var msg = h('div');
    function act(kind) {
      return function () {
        var why = reason.value.trim();
        clear(msg);
        if (why.length < 3) { msg.appendChild(h('div', { class: 'flash error', text: 'Say why (at least 3 characters).' })); reason.focus(); return; }
        var body = kind === 'extend' ? { ttl: ttl.value, reason: why } : { reason: why };
        busy(form, true);
        api('/api/quarantines/' + encodeURIComponent(l.target) + '/' + kind, body).then(function () {
          reason.value = '';
          flash((kind === 'extend' ? 'Extended: ' : 'Released: ') + l.target, 'info');
          S.sig = '';
          refresh();
        }).catch(function (e) { busy(form, false); msg.appendChild(h('div', { class: 'flash error', text: e.message })); });
      };
    }
    var form = h('div', { class: 'lease-actions' }, [reason, h('div', { class: 'actions' }, [
      ttl,
      h('button', { 'data-action': 'extend', onclick: act('extend'), text: 'Extend' }),
      h('button', { class: 'danger', 'data-action': 'release', onclick: act('release'), text: 'Release now' }),
    ]), msg]);
    return form;
  }

  var PAINT = { incidents: paintIncidents, incident: paintIncident, approvals: paintApprovals, quarantines: paintQuarantines };

  if (token()) start(); else loginView('');
})();
`;
