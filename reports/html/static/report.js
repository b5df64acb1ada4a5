// orchscan audit report: graph view (pan, zoom, find, focus, filters), finding filters, table
// sorting and paging, copy buttons. Reads only what the page shows (ids, classes, data
// attributes); no network, no eval, no HTML built from strings.
(function () {
  "use strict";
  const all = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const prefixed = (element, prefix) => {
    const name = Array.from(element.classList).find((c) => c.startsWith(prefix));
    return name ? name.slice(prefix.length) : "";
  };
  const pagers = new Map();
  const repage = (table) => { if (table && pagers.has(table.id)) pagers.get(table.id).refresh(); };

  // Long tables show a page of rows at a time; rows hidden by a filter do not count.
  function setUpPaging() {
    all("table[data-page-size]").forEach((table) => {
      const size = Number(table.dataset.pageSize) || 25;
      const bar = document.querySelector('.pager[data-table="' + table.id + '"]');
      const status = bar && bar.querySelector(".pager-status");
      const more = bar && bar.querySelector(".pager-more");
      const every = bar && bar.querySelector(".pager-all");
      let limit = size;
      const candidates = () => Array.from(table.tBodies[0].rows).filter((r) => !r.classList.contains("is-hidden"));
      function refresh() {
        const rows = candidates();
        rows.forEach((row, i) => row.classList.toggle("is-paged", i >= limit));
        if (!bar) return;
        const shown = Math.min(limit, rows.length);
        status.textContent = "Showing " + shown + " of " + rows.length + " rows";
        more.hidden = every.hidden = shown >= rows.length;
        more.textContent = "Show " + Math.min(size, rows.length - shown) + " more";
        every.textContent = "Show all " + rows.length;
      }
      function reveal(row) {
        const index = candidates().indexOf(row);
        if (index >= limit) limit = Math.ceil((index + 1) / size) * size;
        refresh();
      }
      if (bar) {
        more.addEventListener("click", () => { limit += size; refresh(); });
        every.addEventListener("click", () => { limit = Infinity; refresh(); });
      }
      pagers.set(table.id, { refresh, reveal });
      refresh();
    });
  }

  // A link into a folded owner, flow or table page opens what holds its target first.
  function reveal(element) {
    for (let node = element; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
      if (node.tagName === "TR" && node.classList.contains("is-paged")) {
        const table = node.closest("table");
        if (table && pagers.has(table.id)) pagers.get(table.id).reveal(node);
      }
    }
  }

  function setUpLinks() {
    const target = (hash) => hash.length > 1 && document.getElementById(decodeURIComponent(hash.slice(1)));
    document.addEventListener("click", (event) => {
      const link = event.target.closest && event.target.closest('a[href^="#"]');
      const element = link && target(link.getAttribute("href"));
      if (element) reveal(element);
    });
    const onHash = () => {
      const element = target(location.hash);
      if (element) { reveal(element); element.scrollIntoView(); }
    };
    window.addEventListener("hashchange", onHash);
    if (location.hash) onHash();
  }

  function setUpGraph() {
    const graph = document.getElementById("graph");
    const svg = graph && graph.querySelector("svg");
    if (!svg) return;
    const nodes = all("g.svc", graph);
    const links = all("g.link", graph).map((el) => ({ el, from: prefixed(el, "from-"), to: prefixed(el, "to-") }));
    const role = new Map(nodes.map((n) => [n.id, prefixed(n, "role-")]));
    const table = document.getElementById("services-table");
    const rows = all("#services-table tbody tr");
    const focus = document.getElementById("focus");
    const search = document.getElementById("graph-search");
    const infra = document.getElementById("collapse-infra");
    const status = document.getElementById("graph-status");
    const nameOf = new Map(focus ? Array.from(focus.options).map((o) => [o.value, o.text]) : []);
    const minScale = (Number(graph.dataset.minLabelPx) || 9) / (Number(graph.dataset.labelSize) || 11);
    const maxScale = 1.35;
    let focused = "";
    let matches = [];

    // -- the view: the SVG's viewBox, sized to the box it is shown in --
    const base = svg.viewBox.baseVal;
    const whole = base && base.width ? { x: base.x, y: base.y, w: base.width, h: base.height } : null;
    if (!whole) return;
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    let view = Object.assign({}, whole);
    const setView = (v) => {
      view = v;
      svg.setAttribute("viewBox", [v.x, v.y, v.w, v.h].map((n) => n.toFixed(1)).join(" "));
    };
    const screen = () => ({ w: svg.clientWidth || 800, h: svg.clientHeight || 600 });
    const fitScale = (box) => Math.min(screen().w / box.w, screen().h / box.h);

    function boxOf(elements) {
      const shown = elements.filter((el) => getComputedStyle(el).display !== "none");
      if (!shown.length) return null;
      const toView = svg.getScreenCTM().inverse();
      let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
      shown.forEach((el) => {
        const b = el.getBBox();
        const m = toView.multiply(el.getScreenCTM());
        [[b.x, b.y], [b.x + b.width, b.y + b.height]].forEach(([x, y]) => {
          const p = new DOMPoint(x, y).matrixTransform(m);
          x1 = Math.min(x1, p.x); y1 = Math.min(y1, p.y); x2 = Math.max(x2, p.x); y2 = Math.max(y2, p.y);
        });
      });
      return { x: x1 - 8, y: y1 - 8, w: x2 - x1 + 16, h: y2 - y1 + 16 };
    }

    // Show `box` whole when it fits at `lowest` scale or more. Otherwise fit its height, at no
    // less than `lowest` and no more than life size, and start at its left edge, moved just
    // enough to keep `keep` in view.
    function frame(box, keep, lowest, highest) {
      const size = screen();
      let scale = Math.min(fitScale(box), highest);
      if (scale < lowest) scale = Math.max(lowest, Math.min(size.h / box.h, 1, highest));
      const w = size.w / scale, h = size.h / scale;
      const place = (start, length, keepStart, keepLength, span) => span >= length
        ? start + length / 2 - span / 2
        : Math.min(Math.max(start, keepStart + keepLength - span), keepStart);
      setView({ x: place(box.x, box.w, keep.x, keep.w, w), y: place(box.y, box.h, keep.y, keep.h, h), w, h });
    }

    function firstView() {
      if (fitScale(whole) >= minScale) {
        const tall = whole.h * Math.min(fitScale(whole), maxScale);
        if (tall < screen().h - 24) graph.style.height = Math.ceil(tall + 24) + "px";
        frame(whole, whole, 0, maxScale);
        return;
      }
      const core = boxOf(all("g.svc.core", graph)) || whole;
      const keep = boxOf(all("g.svc.role-orchestrator", graph)) || core;
      frame(core, keep, minScale, maxScale);
    }

    function zoom(factor, cx, cy) {
      const scale = fitScale(view) * factor;
      if (scale < 0.02 || scale > 6) return;
      const x = cx === undefined ? view.x + view.w / 2 : cx;
      const y = cy === undefined ? view.y + view.h / 2 : cy;
      setView({ x: x - (x - view.x) / factor, y: y - (y - view.y) / factor, w: view.w / factor, h: view.h / factor });
    }

    let drag = null;
    let dragged = false;
    svg.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, view: Object.assign({}, view), id: event.pointerId };
      dragged = false;
    });
    svg.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (!dragged && Math.abs(dx) + Math.abs(dy) > 4) {
        dragged = true;
        svg.setPointerCapture(drag.id); // only now, so that a plain click still reaches its service
        graph.classList.add("is-panning");
      }
      if (dragged) {
        const scale = fitScale(drag.view);
        setView(Object.assign({}, drag.view, { x: drag.view.x - dx / scale, y: drag.view.y - dy / scale }));
      }
    });
    const endDrag = () => { drag = null; graph.classList.remove("is-panning"); };
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);
    svg.addEventListener("click", (event) => {
      if (dragged) { event.stopPropagation(); event.preventDefault(); dragged = false; }
    }, true);
    svg.addEventListener("wheel", (event) => {
      if (!event.ctrlKey && !event.metaKey) return; // a plain wheel scrolls the page
      event.preventDefault();
      const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
      zoom(event.deltaY < 0 ? 1.25 : 0.8, p.x, p.y);
    }, { passive: false });
    const button = (id, action) => {
      const element = document.getElementById(id);
      if (element) element.addEventListener("click", action);
    };
    button("zoom-in", () => zoom(1.25));
    button("zoom-out", () => zoom(0.8));
    button("view-first", firstView);
    button("view-all", () => frame(whole, whole, 0, maxScale));

    // -- filters, focus and search --
    const visible = (id) => {
      const r = role.get(id) || "";
      const box = document.querySelector('.role-filter[value="' + r + '"]');
      if (box && !box.checked) return false;
      return !(infra && infra.checked && r === "infrastructure");
    };

    function neighbours() {
      const near = new Set(focused ? [focused] : []);
      links.forEach((l) => {
        if (l.from === focused) near.add(l.to);
        if (l.to === focused) near.add(l.from);
      });
      return near;
    }

    function apply() {
      const near = neighbours();
      let shown = 0;
      nodes.forEach((n) => {
        const on = visible(n.id);
        shown += on ? 1 : 0;
        n.classList.toggle("is-hidden", !on);
        n.classList.toggle("is-dimmed", focused !== "" && !near.has(n.id));
        n.classList.toggle("is-focus", n.id === focused);
        n.classList.toggle("is-match", matches.includes(n.id));
      });
      links.forEach((l) => {
        l.el.classList.toggle("is-hidden", !visible(l.from) || !visible(l.to));
        const touches = l.from === focused || l.to === focused;
        l.el.classList.toggle("is-dimmed", focused !== "" && !touches);
        l.el.classList.toggle("is-near", focused !== "" && touches);
      });
      rows.forEach((row) => row.classList.toggle("is-hidden", !visible(row.dataset.graphId)));
      repage(table);
      if (status) {
        const name = focused ? nameOf.get(focused) || focused : "";
        status.textContent = shown + " of " + nodes.length + " services shown" +
          (name ? "; focus: " + name + " and " + (near.size - 1) + " neighbours" : "") +
          (search && search.value.trim() ? "; " + matches.length + " found" : "");
      }
    }

    function choose(id) {
      focused = id === focused ? "" : id;
      if (focus) focus.value = focused;
      apply();
      const node = focused && document.getElementById(focused);
      if (!node) return;
      const around = boxOf(nodes.filter((n) => neighbours().has(n.id)));
      const self = boxOf([node]);
      if (around && self) frame(around, self, minScale, maxScale);
    }

    nodes.forEach((n) => n.addEventListener("click", (event) => {
      event.preventDefault();
      choose(n.id);
    }));
    if (focus) focus.addEventListener("change", () => { focused = ""; choose(focus.value); });
    if (search) {
      search.addEventListener("input", () => {
        const query = search.value.trim().toLowerCase();
        matches = query ? nodes.map((n) => n.id).filter((id) => (nameOf.get(id) || "").toLowerCase().includes(query)) : [];
        const exact = matches.find((id) => (nameOf.get(id) || "").toLowerCase() === query);
        if (exact && exact !== focused) choose(exact); else apply();
      });
      search.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault();
        if (matches.length) { focused = ""; choose(matches[0]); }
      });
    }
    all(".role-filter").forEach((box) => box.addEventListener("change", apply));
    if (infra) infra.addEventListener("change", apply);
    firstView();
    apply();
  }

  function setUpFindings() {
    const severity = document.getElementById("severity-filter");
    const rule = document.getElementById("rule-filter");
    const status = document.getElementById("findings-status");
    if (!severity || !rule) return;
    const order = ["critical", "high", "medium", "low", "info"];
    const rows = all("#findings-table tr.finding");
    function apply() {
      const limit = severity.value ? order.indexOf(severity.value) : order.length;
      let shown = 0;
      rows.forEach((row) => {
        const on = order.indexOf(row.dataset.severity) <= limit && (!rule.value || row.dataset.rule === rule.value);
        row.classList.toggle("is-hidden", !on);
        shown += on ? 1 : 0;
      });
      repage(document.getElementById("findings-table"));
      if (status) status.textContent = shown + " of " + rows.length + " findings shown";
    }
    severity.addEventListener("change", apply);
    rule.addEventListener("change", apply);
    apply();
  }

  function setUpSorting() {
    all("table.sortable").forEach((table) => {
      const headers = all("thead th", table);
      headers.forEach((th, column) => th.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        const numeric = th.dataset.type === "number";
        const body = table.tBodies[0];
        const key = (row) => row.cells[column].dataset.sort || "";
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          const diff = numeric ? Number(x) - Number(y) : x.localeCompare(y);
          return (ascending ? diff : -diff) || key(a).localeCompare(key(b));
        });
        rows.forEach((row) => body.appendChild(row));
        headers.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        repage(table);
      }));
    });
  }

  function setUpCopy() {
    all("button.copy").forEach((button) => button.addEventListener("click", () => {
      const pre = document.getElementById(button.dataset.target);
      const status = button.parentElement.querySelector(".copy-status");
      const say = (text) => { if (status) status.textContent = text; };
      const fallback = () => {
        // Without the clipboard API (e.g. some file:// contexts) select the text for the user.
        reveal(pre);
        const range = document.createRange();
        range.selectNodeContents(pre);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        let copied = false;
        try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
        say(copied ? "Copied" : "Selected: press Ctrl+C to copy");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(pre.textContent).then(() => say("Copied"), fallback);
      } else {
        fallback();
      }
    }));
  }

  setUpPaging();
  setUpLinks();
  setUpGraph();
  setUpFindings();
  setUpSorting();
  setUpCopy();
})();
