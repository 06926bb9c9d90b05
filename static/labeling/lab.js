// The crowdworker's page, beyond what htmx does: drafts that survive reloads and swaps,
// pick-then-submit on the 8-point scale, keyboard keys, guidelines folded on phones, and
// polling when the token stream (server-sent events) breaks. No inline script anywhere:
// a strict Content-Security-Policy holds.
(function () {
  "use strict";

  var PHONE = window.matchMedia("(max-width: 760px)");
  var DRAFT_PREFIX = "lab-draft:";
  var DRAFT_DAYS = 7;
  var SENT = "lab-draft-sent";
  var POLL_MS = 1000;
  var STREAM_WATCHDOG_MS = 5000;

  // ---- Drafts: every form with data-draft keeps its typed text and choices in the
  // browser until the server has accepted it (the form is gone after the response).
  function draftKey(form) {
    return DRAFT_PREFIX + (document.body.dataset.user || "anon") + ":" + form.dataset.draft;
  }

  function draftFields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      if (!el.name) return false;
      if (el.tagName === "TEXTAREA") return true;
      return el.tagName === "INPUT" && (el.type === "text" || el.type === "radio");
    });
  }

  function saveDraft(form) {
    var values = {};
    var any = false;
    draftFields(form).forEach(function (el) {
      if (el.type === "radio") {
        if (el.checked) { values[el.name] = el.value; any = true; }
      } else if (el.value !== "") {
        values[el.name] = el.value;
        any = true;
      }
    });
    try {
      if (any) localStorage.setItem(draftKey(form), JSON.stringify({ t: Date.now(), v: values }));
      else localStorage.removeItem(draftKey(form));
    } catch (e) { /* storage full or off: the form still works */ }
  }

  function restoreDraft(form) {
    var stored;
    try { stored = JSON.parse(localStorage.getItem(draftKey(form)) || "null"); } catch (e) { stored = null; }
    if (!stored || !stored.v) return;
    draftFields(form).forEach(function (el) {
      var value = stored.v[el.name];
      if (value === undefined) return;
      if (el.type === "radio") {
        var group = form.querySelectorAll('input[type=radio][name="' + el.name + '"]:checked');
        if (!group.length && el.value === value) el.checked = true;
      } else if (el.value === "") {
        el.value = value;  // the server's text (an error re-render) wins over the draft
      }
    });
  }

  function forgetSentDraft() {
    var sent = sessionStorage.getItem(SENT);
    if (!sent) return;
    var still = Array.prototype.some.call(document.querySelectorAll("form[data-draft]"), function (f) {
      return draftKey(f) === sent;
    });
    if (!still) {  // accepted: the server answered with the next step, not this form
      localStorage.removeItem(sent);
      sessionStorage.removeItem(SENT);
    }
  }

  function expireDrafts() {
    var cutoff = Date.now() - DRAFT_DAYS * 86400000;
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var key = localStorage.key(i);
      if (key && key.indexOf(DRAFT_PREFIX) === 0) {
        try {
          if ((JSON.parse(localStorage.getItem(key)) || {}).t < cutoff) localStorage.removeItem(key);
        } catch (e) { localStorage.removeItem(key); }
      }
    }
  }

  document.addEventListener("input", function (e) {
    var form = e.target.form;
    if (form && form.dataset.draft) saveDraft(form);
  });
  // Leaving or reloading the page keeps what the forms hold, also text typed before this
  // script was listening (a fast typist, a slow page).
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("form[data-draft]").forEach(saveDraft);
  });
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.dataset.draft) saveDraft(form);
  });

  // ---- The 8-point scale: with this script a button picks and "Submit" confirms.
  function setUpScale(form) {
    if (form.classList.contains("picking")) return;
    form.classList.add("picking");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "choice";
    form.appendChild(hidden);
  }

  function pick(button) {
    var form = button.form;
    form.querySelectorAll(".scale button").forEach(function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    });
    form.querySelector("input[type=hidden][name=choice]").value = button.value;
    form.classList.add("picked");
    var confirm = form.querySelector("button.confirm");
    confirm.disabled = false;
    confirm.textContent = "Submit: " + button.textContent.replace(/^\s*\d\s*/, "");
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("form.picking .scale button");
    if (!button) return;
    e.preventDefault();
    pick(button);
  });

  // Capture: runs before htmx's own submit handler on the form, so a stopped submit
  // sends nothing. A scale form needs a pick; every accepted submit is remembered so
  // that its draft is forgotten once the server has taken it.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.classList.contains("picking") && !form.querySelector("input[name=choice]").value) {
      e.preventDefault();
      e.stopPropagation();
      var hint = form.querySelector(".js-hint");
      if (hint) hint.classList.add("error");
      return;
    }
    if (form.dataset.draft) {
      saveDraft(form);
      sessionStorage.setItem(SENT, draftKey(form));
    }
  }, true);

  // ---- Keys: 1–8 pick, Ctrl+Enter submits, "/" goes to the message, "?" lists the keys.
  document.addEventListener("keydown", function (e) {
    var typing = e.target.closest && e.target.closest("textarea, input, select, [contenteditable]");
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      var form = (typing && typing.form) || document.querySelector("form.picking.picked");
      if (form) { e.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    var keys = document.getElementById("keys");
    if (e.key === "?" && keys) {
      e.preventDefault();
      if (keys.open) keys.close(); else keys.showModal();
    } else if (e.key === "/" && document.getElementById("id_text")) {
      e.preventDefault();
      document.getElementById("id_text").focus();
    } else if (/^[1-8]$/.test(e.key)) {
      var button = document.querySelector('form.picking .scale button[data-key="' + e.key + '"]');
      if (button && !button.disabled) { e.preventDefault(); pick(button); button.focus(); }
    }
  });

  // ---- The stream: if it errors or says nothing, poll the turn until it is ready.
  if (!window.EventSource) {
    // No server-sent events in this browser: every stream "fails" at once, so the page
    // polls. (The extension asks htmx.createEventSource for its sources.)
    htmx.createEventSource = function () {
      var source = { readyState: 2, close: function () {}, addEventListener: function () {} };
      Object.defineProperty(source, "onerror", {
        set: function (handler) { setTimeout(function () { handler(new Event("error")); }, 0); },
      });
      return source;
    };
  }

  function poll(turn) {
    if (turn.dataset.polling) return;
    turn.dataset.polling = "on";
    var timer = setInterval(function () {
      if (!document.body.contains(turn)) { clearInterval(timer); return; }
      htmx.ajax("GET", turn.dataset.poll, { target: turn, swap: "outerHTML" });
    }, POLL_MS);
  }

  document.addEventListener("htmx:sseError", function (e) {
    var turn = e.target.closest(".turn.live");
    if (turn) poll(turn);
  });

  function watchStream(turn) {
    var heard = false;
    turn.addEventListener("htmx:sseMessage", function () { heard = true; }, { once: true });
    setTimeout(function () { if (!heard && document.body.contains(turn)) poll(turn); }, STREAM_WATCHDOG_MS);
  }

  // ---- Each piece of page htmx puts in (and the first page): wire it up.
  function visible(el) {
    var box = el.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
  }

  htmx.onLoad(function (root) {
    var scope = root.querySelectorAll ? root : document;
    var self = scope.matches ? [scope] : [];
    function all(selector) {
      return self.filter(function (el) { return el.matches(selector); })
        .concat(Array.prototype.slice.call(scope.querySelectorAll(selector)));
    }
    all("form[data-draft]").forEach(restoreDraft);
    all("form").forEach(function (form) { if (form.querySelector(".scale")) setUpScale(form); });
    all(".turn.live").forEach(watchStream);
    all(".turn").forEach(function (turn) { if (!visible(turn)) turn.scrollIntoView({ block: "start" }); });
    var text = document.getElementById("id_text");
    if (text && root !== document.body && scope.contains(text)) text.focus({ preventScroll: true });
    forgetSentDraft();
  });

  document.addEventListener("DOMContentLoaded", function () {
    expireDrafts();
    if (PHONE.matches) {
      document.querySelectorAll("details.guidelines").forEach(function (d) { d.open = false; });
    }
  });
})();
