/* Ranking: order K responses best first by mouse, keyboard or touch. No framework.

The form works without JavaScript: each response has a "Place" select (1 is the best;
equal places are a tie where the campaign allows ties). With JavaScript the cards
themselves are the order and the selects are hidden but still posted:

- mouse and touch: drag a card by its bar (pointer events; the bar has touch-action: none
  so a finger drags it instead of scrolling the page), or press its up/down buttons;
- keyboard: Tab to a card, Space or Enter picks it up, Arrow Up/Down or a number key 1-K
  moves it, Space or Enter drops it, Escape puts it back where it was picked up;
- ties: "Tied with the one above" gives a card the place of the card above it.

After every change the selects are rewritten from the cards, so the form always posts
the order on screen, and the change is announced in the form's aria-live region.

A card moves by moving its neighbours around it: the card itself never leaves the
document, so it keeps the keyboard focus and the pointer capture of a drag. */
(function () {
  "use strict";

  function setUp(form) {
    if (form.dataset.rankingReady) return;
    form.dataset.rankingReady = "1";
    form.classList.add("js");
    const list = form.querySelector(".rank-list");
    const live = form.querySelector(".rank-live");
    const cards = () => Array.from(list.children);
    const indexOf = (card) => cards().indexOf(card);
    const name = (card) => "Response " + card.dataset.letter;
    const select = (card) => card.querySelector("select");
    const tieBox = (card) => card.querySelector(".tie-box");
    let held = null; // keyboard: {card, from}
    let drag = null; // pointer: {card, head, id, from, y}

    // Start from the places in the selects: a form shown again after a refused answer
    // keeps the order the worker had made.
    const placeOf = (card) => Number(select(card).value);
    cards()
      .map((card, i) => ({ card, i, place: placeOf(card) }))
      .sort((a, b) => a.place - b.place || a.i - b.i)
      .forEach(({ card }, i, sorted) => {
        list.appendChild(card);
        const box = tieBox(card);
        if (box && i > 0) box.checked = sorted[i - 1].place === placeOf(card);
      });
    sync();

    function placeText(card) {
      const all = cards();
      const place = placeOf(card);
      const tied = all.filter((c) => c !== card && placeOf(c) === place).map(name);
      let text = "place " + place + " of " + all.length;
      if (tied.length) text += ", tied with " + tied.join(" and ");
      return text;
    }

    function announce(text) {
      live.textContent = text;
    }

    // The places follow the cards: the i-th card is place i + 1, unless it is tied with
    // the card above (then it shares that card's place).
    function sync() {
      let place = 0;
      cards().forEach((card, i) => {
        const box = tieBox(card);
        if (box) {
          box.disabled = i === 0;
          if (i === 0) box.checked = false;
        }
        place = box && box.checked ? place : i + 1;
        select(card).value = String(place);
        card.querySelector(".rank-place").textContent = String(place);
        card.querySelector(".move-up").disabled = i === 0;
        card.querySelector(".move-down").disabled = i === cards().length - 1;
      });
      cards().forEach((card) => card.setAttribute("aria-label", name(card) + ", " + placeText(card)));
    }

    function moveTo(card, target) {
      const all = cards();
      target = Math.max(0, Math.min(all.length - 1, target));
      let i = all.indexOf(card);
      while (i > target) {
        list.insertBefore(card.previousElementSibling, card.nextElementSibling);
        i--;
      }
      while (i < target) {
        list.insertBefore(card.nextElementSibling, card);
        i++;
      }
      sync();
    }

    // Keyboard.
    list.addEventListener("keydown", (event) => {
      const card = event.target;
      if (!card.classList || !card.classList.contains("rank-card")) return;
      const key = event.key;
      if (key === " " || key === "Enter") {
        event.preventDefault();
        if (held) drop();
        else pickUp(card);
      } else if (key === "ArrowUp" || key === "ArrowDown") {
        event.preventDefault();
        const step = key === "ArrowUp" ? -1 : 1;
        if (held) {
          moveTo(card, indexOf(card) + step);
          announce(name(card) + " moved to " + placeText(card) + ".");
        } else {
          const next = cards()[indexOf(card) + step];
          if (next) next.focus();
        }
      } else if (held && /^[1-9]$/.test(key) && Number(key) <= cards().length) {
        event.preventDefault();
        moveTo(card, Number(key) - 1);
        announce(name(card) + " moved to " + placeText(card) + ".");
      } else if (key === "Escape" && held) {
        event.preventDefault();
        moveTo(held.card, held.from);
        release();
        announce("Cancelled. " + name(card) + " is back at " + placeText(card) + ".");
      }
    });

    function pickUp(card) {
      held = { card, from: indexOf(card) };
      card.classList.add("held");
      card.setAttribute("aria-grabbed", "true");
      announce(
        name(card) + " picked up, " + placeText(card) + ". Arrow keys or 1 to " +
          cards().length + " move it, Space drops it, Escape cancels."
      );
    }

    function drop() {
      const card = held.card;
      release();
      announce(name(card) + " dropped at " + placeText(card) + ".");
    }

    function release() {
      held.card.classList.remove("held");
      held.card.removeAttribute("aria-grabbed");
      held = null;
    }

    list.addEventListener("focusout", (event) => {
      if (held && event.target === held.card) drop();
    });

    // Buttons and tie boxes.
    list.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      const card = button.closest(".rank-card");
      moveTo(card, indexOf(card) + (button.classList.contains("move-up") ? -1 : 1));
      if (button.disabled) card.querySelector("button:not(:disabled)").focus();
      announce(name(card) + " moved to " + placeText(card) + ".");
    });

    list.addEventListener("change", (event) => {
      if (!event.target.classList.contains("tie-box")) return;
      sync();
      const card = event.target.closest(".rank-card");
      announce(name(card) + " is at " + placeText(card) + ".");
    });

    // Pointer: mouse, pen and touch alike.
    list.addEventListener("pointerdown", (event) => {
      const head = event.target.closest(".rank-head");
      if (!head || event.target.closest("button, input, select, label") || event.button > 0) {
        return;
      }
      event.preventDefault(); // no text selection, no focus change mid-drag
      const card = head.closest(".rank-card");
      head.setPointerCapture(event.pointerId);
      drag = { card, head, id: event.pointerId, from: indexOf(card), y: event.clientY };
      card.classList.add("dragging");
      requestAnimationFrame(autoScroll);
    });

    list.addEventListener("pointermove", (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      event.preventDefault();
      drag.y = event.clientY;
      follow();
    });

    // While the pointer is above the middle of the card before, or below the middle of
    // the card after, the dragged card takes that card's place.
    function follow() {
      const card = drag.card;
      const middle = (el) => {
        const box = el.getBoundingClientRect();
        return box.top + box.height / 2;
      };
      let prev = card.previousElementSibling;
      let next = card.nextElementSibling;
      while (prev && drag.y < middle(prev)) {
        moveTo(card, indexOf(card) - 1);
        prev = card.previousElementSibling;
      }
      while (next && drag.y > middle(next)) {
        moveTo(card, indexOf(card) + 1);
        next = card.nextElementSibling;
      }
    }

    // Near the top or bottom of the window, scroll so a card can be dragged past it.
    function autoScroll() {
      if (!drag) return;
      const edge = 60;
      const step = drag.y < edge ? -12 : drag.y > window.innerHeight - edge ? 12 : 0;
      if (step) {
        window.scrollBy(0, step);
        follow();
      }
      requestAnimationFrame(autoScroll);
    }

    function endDrag(event, cancelled) {
      if (!drag || event.pointerId !== drag.id) return;
      const { card, from } = drag;
      drag = null;
      card.classList.remove("dragging");
      if (cancelled) {
        moveTo(card, from);
        announce("Cancelled. " + name(card) + " is back at " + placeText(card) + ".");
      } else if (indexOf(card) !== from) {
        announce(name(card) + " moved to " + placeText(card) + ".");
      }
    }

    list.addEventListener("pointerup", (event) => endDrag(event, false));
    list.addEventListener("pointercancel", (event) => endDrag(event, true));
  }

  function init(root) {
    root.querySelectorAll("form.ranking").forEach(setUp);
  }

  // htmx swaps in the next item without a page load; htmx.onLoad also runs for the page.
  if (window.htmx) window.htmx.onLoad(init);
  else document.addEventListener("DOMContentLoaded", () => init(document));
})();
