// The bridge's page: polls the JSON API (/api/summary, /api/actions?since=N, /api/invocations)
// and draws one timeline lane per executor slot on a canvas. No libraries.
"use strict";
(function () {
  const COLORS = { "x86-64": "#1e88e5", "arm-a64": "#fb8c00" };
  const LIGHT = { "x86-64": "#90caf9", "arm-a64": "#ffcc80" };
  const LANE_H = 18, LABEL_W = 170, AXIS_H = 18, MAX_ACTIONS = 20000;
  const actions = [];           // ActionRecord JSON, oldest first
  let next = 0, invocations = [], hovered = null, pinned = null, firstRender = null;
  const canvas = document.getElementById("timeline");
  const ctx = canvas.getContext("2d");
  const tip = document.getElementById("tip");
  const started = performance.now();

  function color(isa, light) { return (light ? LIGHT : COLORS)[isa] || (light ? "#e0e0e0" : "#9e9e9e"); }
  function laneKey(a) { return a.cached ? "cache hits" : (a.executor || "(unknown)"); }
  function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

  async function get(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
    return r.json();
  }

  function visible() {
    const inv = document.getElementById("invocation").value;
    let list = inv ? actions.filter(a => a.invocation === inv) : actions;
    if (document.getElementById("critical").checked && inv) {
      const row = invocations.find(r => r.invocation === inv);
      const on = new Set(row ? row.critical_path : []);
      list = list.filter(a => on.has(a.seq));
    }
    return list;
  }

  function layout(list) {
    const lanes = new Map();
    for (const a of list) {
      const k = laneKey(a);
      if (!lanes.has(k)) lanes.set(k, { key: k, isa: a.cached ? "" : a.isa, bars: [] });
      lanes.get(k).bars.push(a);
    }
    const order = [...lanes.values()].sort((x, y) => (x.isa + x.key).localeCompare(y.isa + y.key));
    let t0 = Infinity, t1 = -Infinity;
    for (const a of list) { t0 = Math.min(t0, a.queued || a.worker_start || a.completed); t1 = Math.max(t1, a.completed); }
    if (!isFinite(t0)) { t0 = 0; t1 = 1; }
    return { order, t0, t1: Math.max(t1, t0 + 0.001) };
  }

  let geometry = null;
  function draw() {
    const list = visible();
    const { order, t0, t1 } = layout(list);
    const width = Math.max(900, document.getElementById("timeline-wrap").clientWidth - 2);
    canvas.width = width;
    canvas.height = AXIS_H + Math.max(1, order.length) * LANE_H + 4;
    const scale = (width - LABEL_W - 10) / (t1 - t0);
    const x = t => LABEL_W + (t - t0) * scale;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "#555";
    for (let i = 0; i <= 5; i++) {
      const t = t0 + (t1 - t0) * i / 5;
      const label = (t - t0).toFixed(2) + " s";
      ctx.fillText(label, Math.min(x(t) - 10, width - ctx.measureText(label).width - 4), 12);
    }
    const hits = [];
    order.forEach((lane, i) => {
      const y = AXIS_H + i * LANE_H;
      ctx.fillStyle = i % 2 ? "#fff" : "#f5f7f8";
      ctx.fillRect(0, y, width, LANE_H);
      ctx.fillStyle = "#333";
      ctx.fillText(lane.key.slice(0, 26), 4, y + 13);
      for (const a of lane.bars) {
        const q = a.queued || a.worker_start || a.completed;
        const segments = [
          [q, a.worker_start || q, "#cfd8dc"],
          [a.fetch_start || a.worker_start, a.fetch_end || a.fetch_start, color(a.isa, true)],
          [a.exec_start || a.worker_start || q, a.exec_end || a.completed, a.cached ? "#66bb6a" : color(a.isa, false)],
          [a.upload_start || a.exec_end, a.upload_end || a.upload_start, color(a.isa, true)],
        ];
        for (const [s, e, c] of segments) {
          if (!s || !e || e < s) continue;
          ctx.fillStyle = c;
          ctx.fillRect(x(s), y + 3, Math.max(1, (e - s) * scale), LANE_H - 6);
        }
        if (a.exit_code !== 0 || a.status !== 0) { ctx.fillStyle = "#e53935"; ctx.fillRect(x(a.completed) - 1, y + 2, 2, LANE_H - 4); }
        hits.push({ a, x0: x(q), x1: Math.max(x(q) + 2, x(a.completed)), y0: y, y1: y + LANE_H });
      }
    });
    geometry = hits;
    const lanes = document.getElementById("lanes");
    lanes.innerHTML = order.map(l => `<div class="lane" data-lane="${esc(l.key)}" data-isa="${esc(l.isa)}" data-bars="${l.bars.length}"></div>`).join("");
    lanes.dataset.total = String(list.length);
    if (firstRender === null && list.length) {
      firstRender = performance.now() - started;
      document.body.dataset.firstRenderMs = firstRender.toFixed(1);
    }
  }

  function describe(a) {
    const phase = (s, e) => (s && e ? ((e - s) * 1000).toFixed(1) + " ms" : "-");
    return [
      (a.argv || []).join(" "),
      "platform   " + a.platform,
      "executor   " + (a.executor || "-") + (a.cached ? "   (cache hit)" : ""),
      "digest     " + a.action,
      "exit code  " + a.exit_code + (a.status ? "   status " + a.status : ""),
      "queued     " + phase(a.queued, a.worker_start),
      "fetch      " + phase(a.fetch_start, a.fetch_end),
      "executing  " + phase(a.exec_start, a.exec_end),
      "upload     " + phase(a.upload_start, a.upload_end),
      "Pants run  " + a.invocation,
    ].join("\n");
  }

  function at(ev) {
    if (!geometry) return null;
    const r = canvas.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    for (let i = geometry.length - 1; i >= 0; i--) {
      const g = geometry[i];
      if (px >= g.x0 && px <= g.x1 && py >= g.y0 && py <= g.y1) return g.a;
    }
    return null;
  }
  canvas.addEventListener("mousemove", ev => {
    hovered = at(ev);
    if (!hovered) { tip.style.display = "none"; return; }
    tip.textContent = describe(hovered);
    tip.style.left = (ev.offsetX + 12) + "px";
    tip.style.top = (ev.offsetY + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  canvas.addEventListener("click", ev => {
    pinned = at(ev);
    document.getElementById("details").textContent = pinned ? describe(pinned) : "hover or click a bar";
  });
  document.getElementById("invocation").addEventListener("change", draw);
  document.getElementById("critical").addEventListener("change", draw);

  function renderSummary(s) {
    const hr = s.action_cache.hit_rate === null ? "n/a" : (100 * s.action_cache.hit_rate).toFixed(1) + "%";
    document.getElementById("headline").textContent =
      `${s.running} running, ${s.completed} completed · cache ${s.action_cache.entries} results, hit rate ${hr} · ` +
      `CAS ${s.cas.blobs} blobs, ${(s.cas.bytes / 1048576).toFixed(1)} MiB`;
    document.querySelector("#executors tbody").innerHTML = s.executors.map(e =>
      `<tr data-executor="${esc(e.name)}"><td>${esc(e.name)}</td><td>${esc(Object.entries(e.properties).map(([k, v]) => k + "=" + v).join(", "))}</td>` +
      `<td>${e.busy} / ${e.slots}</td></tr>`).join("");
    const q = Object.entries(s.queues);
    document.getElementById("queues").textContent = q.length ? q.map(([p, n]) => `${p}: ${n}`).join("; ") : "none";
  }

  function renderInvocations() {
    const sel = document.getElementById("invocation");
    const current = sel.value;
    sel.innerHTML = '<option value="">all</option>' + invocations.map(r =>
      `<option value="${esc(r.invocation)}">${esc(r.invocation.slice(0, 36))} · ${r.actions} actions · critical path ${r.critical_path_seconds} s</option>`).join("");
    sel.value = current;
  }

  async function poll() {
    try {
      const [s, a, inv] = await Promise.all([get("/api/summary"), get("/api/actions?since=" + next), get("/api/invocations")]);
      renderSummary(s);
      if (a.actions.length) {
        actions.push(...a.actions);
        if (actions.length > MAX_ACTIONS) actions.splice(0, actions.length - MAX_ACTIONS);
        next = a.next;
      }
      invocations = inv.invocations;
      renderInvocations();
      draw();
      document.body.dataset.loaded = "1";
    } catch (err) {
      document.getElementById("headline").textContent = String(err);
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
