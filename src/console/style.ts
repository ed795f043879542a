/** The console's stylesheet: one small file, phone first, no framework. */
export const CONSOLE_CSS = String.raw`
:root { --bg:#0f1419; --panel:#171d24; --line:#2a323c; --text:#e6e9ed; --muted:#8b96a3; --accent:#4aa3ff;
  --crit:#ff4d5e; --high:#ff8a3d; --med:#f2c94c; --low:#6fcf97; --ok:#6fcf97; --warn:#f2c94c; --bad:#ff4d5e; }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 16px; padding: 8px 16px; background: var(--panel); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 5; }
header.top .brand { font-weight: 700; letter-spacing: .04em; margin-right: 8px; }
header.top nav { display: flex; gap: 4px; flex-wrap: wrap; }
header.top nav a { padding: 6px 10px; border-radius: 6px; color: var(--text); }
header.top nav a.active { background: var(--line); }
header.top .who { margin-left: auto; color: var(--muted); font-size: 13px; display: flex; gap: 8px; align-items: center; }
.updates { font-size: 12px; padding: 1px 8px; border-radius: 10px; border: 1px solid var(--line); }
.updates.live { color: #111; background: var(--ok); border-color: transparent; }
.manual input[name="entity"] { width: 100%; margin-bottom: 8px; }
.manual .preview { margin: 8px 0; }
.chip.manual-hold { font-style: italic; }
.count { display: inline-block; min-width: 20px; padding: 0 6px; margin-left: 4px; border-radius: 10px; background: var(--high); color: #111; font-size: 12px; font-weight: 700; text-align: center; }
.count.zero { background: var(--line); color: var(--muted); }
main { padding: 16px; max-width: 1200px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 8px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px; margin: 8px 0; }
.flash { padding: 8px 12px; border-radius: 6px; margin: 8px 0; }
.flash.error { background: #3a1a1f; border: 1px solid var(--bad); }
.flash.info { background: #15283a; border: 1px solid var(--accent); }
.sev { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700; color: #111; text-transform: uppercase; }
.sev.critical { background: var(--crit); } .sev.high { background: var(--high); } .sev.medium { background: var(--med); } .sev.low { background: var(--low); }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; border: 1px solid var(--line); white-space: nowrap; }
.state.done, .state.approved, .state.applied { border-color: var(--ok); color: var(--ok); }
.state.waiting, .state.pending { border-color: var(--warn); color: var(--warn); }
.state.denied, .state.failed, .state.timed-out { border-color: var(--bad); color: var(--bad); }
.chip { display: inline-block; padding: 1px 8px; margin: 2px 4px 2px 0; border-radius: 4px; background: var(--line); font-size: 13px; word-break: break-all; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.filters input { flex: 1 1 220px; min-width: 0; }
input, select, textarea, button { font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
textarea { width: 100%; min-height: 60px; }
button { cursor: pointer; background: var(--line); }
button.primary { background: var(--accent); border-color: var(--accent); color: #06121f; font-weight: 700; }
button.danger { background: transparent; border-color: var(--bad); color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; align-items: center; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
th.sortable { cursor: pointer; }
th.sorted::after { content: " \25BE"; }
th.sorted.asc::after { content: " \25B4"; }
tr.link { cursor: pointer; }
tr.link:hover td { background: #1c242d; }
td.num, th.num { text-align: right; }
table.compact th, table.compact td { padding: 4px 6px; font-size: 13px; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
.wrap { overflow-wrap: anywhere; word-break: break-word; }
.grid > div { min-width: 0; }
.cut { color: var(--high); font-weight: 600; }
.graph { overflow-x: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; }
.graph svg { display: block; min-width: 100%; }
.graph .node circle { stroke: #111; stroke-width: 2; }
.graph .node.root circle { fill: var(--crit); } .graph .node.pivot circle { fill: var(--high); } .graph .node.target circle { fill: var(--accent); }
.graph .node text { fill: var(--text); font-size: 12px; }
.graph .node text.role { fill: var(--muted); font-size: 11px; }
.graph .edge path { fill: none; stroke: var(--bad); stroke-width: 2; }
.graph .edge.allowed path { stroke: var(--high); stroke-dasharray: 6 4; }
.graph .edge text { fill: var(--text); font-size: 11px; paint-order: stroke; stroke: var(--bg); stroke-width: 3px; }
.graph marker path { fill: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 8px; }
.grid .k { color: var(--muted); font-size: 12px; text-transform: uppercase; }
.steps { list-style: none; padding: 0; margin: 0; }
.steps li { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; padding: 8px 0; border-bottom: 1px solid var(--line); }
.steps .idx { color: var(--muted); width: 20px; }
.steps .what { flex: 1 1 240px; }
.login { max-width: 420px; margin: 10vh auto; }
.login input { width: 100%; margin: 8px 0; }
.card h3 { margin: 0 0 6px; font-size: 16px; }
.timeleft { font-variant-numeric: tabular-nums; font-weight: 700; }
@media (max-width: 700px) {
  main { padding: 8px; }
  header.top { padding: 6px 8px; }
  header.top .who { margin-left: 0; width: 100%; }
  table.cards thead { display: none; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; padding: 4px 0; background: var(--panel); }
  table.cards td { border: 0; padding: 3px 10px; display: flex; gap: 8px; word-break: break-word; }
  table.cards td::before { content: attr(data-label); color: var(--muted); min-width: 90px; flex: 0 0 90px; font-size: 12px; text-transform: uppercase; }
  table.cards td.num { text-align: left; }
  .actions button, .actions select { flex: 1 1 auto; }
  table.compact .wide { display: none; }
}
`;
