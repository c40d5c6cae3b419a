"""The page's static parts: the stylesheet and the Annotate tab's keyboard script."""

SHORTCUTS = """
<script>
(() => {
  const LABELS = {positive: "pos", negative: "neg", false_negative: "false neg", "": "\u00b7"};
  const CYCLE = ["", "positive", "negative", "false_negative"];
  const BUTTONS = {a: "accept-button", r: "reject-button", s: "skip-button",
                   n: "skip-button", u: "undo-button"};
  let falseNegativeKey = 0;
  const card = () => document.querySelector("#annotate-card .cc-card");
  const shown = (el) => !!el && el.getClientRects().length > 0;
  const press = (id) => {
    const button = document.getElementById(id);
    if (shown(button)) button.click();
  };
  const setMark = (row, mark) => {
    row.dataset.mark = mark;
    const chip = row.querySelector(".cc-mark");
    if (chip) chip.textContent = LABELS[mark] || LABELS[""];
  };
  // the marks on the card, as the JSON the Override handler reads (curator.ui.annotation)
  window.curatorMarks = () => {
    const c = card();
    if (!c || !c.dataset.query) return "";
    const out = {query: Number(c.dataset.query), positive: [], negative: [], false_negative: [],
                 edits: {}};
    c.querySelectorAll("tr[data-pid]").forEach((row) => {
      if (out[row.dataset.mark]) out[row.dataset.mark].push(row.dataset.pid);
      const body = row.querySelector(".cc-body");
      if (row.dataset.edited && body) out.edits[row.dataset.pid] = body.innerText;
    });
    return JSON.stringify(out);
  };
  // "edit" makes a row's text editable in place; the edit goes with the next save
  const startEdit = (row) => {
    const body = row.querySelector(".cc-body");
    if (!body) return;
    row.classList.add("cc-editing");
    row.querySelector(".cc-text").classList.add("cc-open");
    body.contentEditable = "plaintext-only";
    body.focus();
  };
  document.addEventListener("focusin", (event) => {
    const box = event.target.closest && event.target.closest("#query-box");
    if (box) event.target.dataset.original = event.target.value;
  });
  document.addEventListener("input", (event) => {
    const body = event.target.closest && event.target.closest(".cc-body");
    if (body) body.closest("tr[data-pid]").dataset.edited = "1";
  });
  document.addEventListener("click", (event) => {
    const chip = event.target.closest && event.target.closest(".cc-mark");
    if (chip) {
      const row = chip.closest("tr[data-pid]");
      const next = CYCLE[(CYCLE.indexOf(row.dataset.mark || "") + 1) % CYCLE.length];
      setMark(row, next);
      return;
    }
    const edit = event.target.closest && event.target.closest(".cc-edit");
    if (edit) {
      startEdit(edit.closest("tr[data-pid]"));
      return;
    }
    const text = event.target.closest && event.target.closest(".cc-text");
    if (text && !text.closest(".cc-editing")) text.classList.toggle("cc-open");
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(target && target.tagName);
    if (typing || (target && target.isContentEditable)) {
      // in the query field, Enter saves (the field's own submit) and Esc puts the text
      // back as it was when the field was entered; either way the focus goes back to the
      // page, so the card's keys judge again
      const inQuery = target.closest && target.closest("#query-box");
      if (inQuery && event.key === "Escape") {
        if (target.dataset.original !== undefined && target.value !== target.dataset.original) {
          target.value = target.dataset.original;
          target.dispatchEvent(new Event("input", {bubbles: true}));
        }
        target.blur();
      }
      if (inQuery && event.key === "Enter") setTimeout(() => target.blur(), 0);
      return;
    }
    const c = card();
    if (!shown(c) && !shown(document.getElementById("accept-button"))) return;  // other tab
    const digit = /^(?:Digit|Numpad)(\\d)$/.exec(event.code || "");
    if (digit && c) {
      const row = c.querySelector(`tr[data-key="${digit[1]}"]`);
      event.preventDefault();
      if (!row) return;
      const fresh = Date.now() - falseNegativeKey < 3000;
      const mark = fresh ? "false_negative" : event.shiftKey ? "negative" : "positive";
      falseNegativeKey = 0;
      c.classList.remove("cc-fn-pending");
      setMark(row, row.dataset.mark === mark ? "" : mark);
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault();
      press("override-button");
      return;
    }
    if (event.shiftKey) return;
    const key = (event.key || "").toLowerCase();
    if (key === "f" && c) {
      falseNegativeKey = Date.now();
      c.classList.add("cc-fn-pending");
      event.preventDefault();
      return;
    }
    if (key === "q") {  // fix the query: its field, text selected, ready to type over
      const box = document.querySelector("#query-box textarea, #query-box input");
      if (shown(box)) {
        event.preventDefault();
        box.focus();
        box.select();
      }
      return;
    }
    if (BUTTONS[key]) {
      event.preventDefault();
      press(BUTTONS[key]);
    }
  }, true);
})();
</script>
"""

# the marks go to the handler from the card (the page's script reads them), never from
# components that outlive the card
MARKS_JS = (
    "(...args) => { args[0] = window.curatorMarks ? window.curatorMarks() : ''; return args; }"
)

CSS = """
#annotate-bar { position: sticky; top: 0; z-index: 20; background: var(--background-fill-primary);
  padding: 4px 0; }
#annotate-bar button { min-width: 0; }
#queue-position { text-align: right; }
#annotate-bar button { padding: 6px 10px; }
#annotate-message p, #card-header p { margin: 0; }
#annotate-card .cc-task { margin: 0 0 4px; }
#annotate-card .cc-scroll { max-height: calc(100vh - 330px); min-height: 300px; overflow-y: auto;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
#annotate-card table.cc-rows { width: 100%; border-collapse: collapse; table-layout: fixed;
  font-size: 14px; }
#annotate-card tr[data-pid] { border-bottom: 1px solid var(--border-color-primary); }
#annotate-card td { vertical-align: top; padding: 5px 6px; border: none; }
#annotate-card td.cc-key { width: 28px; font-weight: 700; text-align: center; color: #666; }
#annotate-card td.cc-markcell { width: 82px; }
#annotate-card .cc-mark { width: 76px; padding: 2px 0; border-radius: 4px; font-weight: 600;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  cursor: pointer; }
#annotate-card tr[data-mark="positive"] { background: rgba(46, 160, 67, 0.13); }
#annotate-card tr[data-mark="positive"] .cc-mark { background: #2ea043; color: white; }
#annotate-card tr[data-mark="negative"] { background: rgba(218, 54, 51, 0.09); }
#annotate-card tr[data-mark="negative"] .cc-mark { background: #da3633; color: white; }
#annotate-card tr[data-mark="false_negative"] { background: rgba(210, 153, 34, 0.15); }
#annotate-card tr[data-mark="false_negative"] .cc-mark { background: #bf8700; color: white; }
#annotate-card .cc-fn-pending .cc-key { color: #bf8700; }
#annotate-card .cc-meta { font-size: 12px; margin-bottom: 2px; }
#annotate-card .cc-pid { font-family: var(--font-mono); font-weight: 600; }
#annotate-card .cc-badge { border-radius: 3px; padding: 0 4px; font-size: 11px; }
#annotate-card .cc-seed { background: #0969da; color: white; }
#annotate-card .cc-proposed { background: #8250df; color: white; }
#annotate-card .cc-scores { color: var(--body-text-color-subdued); font-family: var(--font-mono); }
#annotate-card .cc-text { overflow-wrap: anywhere; display: -webkit-box; line-height: 1.35;
  -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; cursor: pointer; }
#annotate-card .cc-text.cc-open { -webkit-line-clamp: unset; display: block;
  white-space: pre-wrap; }
#annotate-card .cc-edit { font-size: 11px; padding: 0 5px; border-radius: 3px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
#annotate-card tr.cc-editing .cc-body { outline: 2px solid #bf8700; display: block;
  padding: 2px; cursor: text; }
#annotate-card tr[data-edited] .cc-edit { background: #bf8700; color: white; }
.job-result { min-height: 64px; }
#queries-table table, #passages-table table { table-layout: fixed; }
"""
