// orchscan audit report: graph focus and filters, finding filters, table sorting, copy buttons.
// Reads only what the page shows (ids, classes, data attributes); no network, no eval.
(function () {
  "use strict";
  const all = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const prefixed = (element, prefix) => {
    const name = Array.from(element.classList).find((c) => c.startsWith(prefix));
    return name ? name.slice(prefix.length) : "";
  };

  function setUpGraph() {
    const graph = document.getElementById("graph");
    if (!graph) return;
    const nodes = all("g.svc", graph);
    const links = all("g.link", graph).map((el) => ({ el, from: prefixed(el, "from-"), to: prefixed(el, "to-") }));
    const role = new Map(nodes.map((n) => [n.id, prefixed(n, "role-")]));
    const rows = all("#services-table tbody tr");
    const focus = document.getElementById("focus");
    const infra = document.getElementById("collapse-infra");
    const status = document.getElementById("graph-status");
    let focused = "";

    const visible = (id) => {
      const r = role.get(id) || "";
      const box = document.querySelector('.role-filter[value="' + r + '"]');
      if (box && !box.checked) return false;
      return !(infra && infra.checked && r === "infrastructure");
    };

    function apply() {
      const near = new Set(focused ? [focused] : []);
      links.forEach((l) => {
        if (l.from === focused) near.add(l.to);
        if (l.to === focused) near.add(l.from);
      });
      let shown = 0;
      nodes.forEach((n) => {
        const on = visible(n.id);
        shown += on ? 1 : 0;
        n.classList.toggle("is-hidden", !on);
        n.classList.toggle("is-dimmed", focused !== "" && !near.has(n.id));
        n.classList.toggle("is-focus", n.id === focused);
      });
      links.forEach((l) => {
        l.el.classList.toggle("is-hidden", !visible(l.from) || !visible(l.to));
        const touches = l.from === focused || l.to === focused;
        l.el.classList.toggle("is-dimmed", focused !== "" && !touches);
        l.el.classList.toggle("is-near", focused !== "" && touches);
      });
      rows.forEach((row) => row.classList.toggle("is-hidden", !visible(row.dataset.graphId)));
      if (status) {
        const name = focused && focus ? focus.options[focus.selectedIndex].text : "";
        status.textContent = shown + " of " + nodes.length + " services shown" +
          (name ? "; focus: " + name + " and " + (near.size - 1) + " neighbours" : "");
      }
    }

    function choose(id) {
      focused = id === focused ? "" : id;
      if (focus) focus.value = focused;
      apply();
      const node = focused && document.getElementById(focused);
      if (node && node.scrollIntoView) node.scrollIntoView({ block: "nearest", inline: "center" });
    }

    nodes.forEach((n) => n.addEventListener("click", (event) => {
      event.preventDefault();
      choose(n.id);
    }));
    if (focus) focus.addEventListener("change", () => { focused = ""; choose(focus.value); });
    all(".role-filter").forEach((box) => box.addEventListener("change", apply));
    if (infra) infra.addEventListener("change", apply);
    const fit = document.getElementById("fit-graph");
    if (fit) fit.addEventListener("change", () => graph.classList.toggle("fit", fit.checked));
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

  setUpGraph();
  setUpFindings();
  setUpSorting();
  setUpCopy();
})();
