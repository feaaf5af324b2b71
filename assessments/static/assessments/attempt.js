/*
 * The attempt page, enhanced: autosave of each answer through the API, a countdown to the server's
 * deadline (the remaining seconds come from the server; at zero the page submits), and a
 * confirmation dialog that counts unanswered questions. Without this script the page still works:
 * the form is a plain POST. No inline script is needed, so the page runs under a strict
 * Content-Security-Policy.
 */
(function () {
  "use strict";

  var form = document.getElementById("attempt-form");
  if (!form) {
    return;
  }
  var csrfInput = form.querySelector("input[name=csrfmiddlewaretoken]");
  var csrfToken = csrfInput ? csrfInput.value : "";
  var fieldsets = Array.prototype.slice.call(form.querySelectorAll("fieldset[data-item-id]"));
  var confirmButton = document.getElementById("confirm-submit");
  var reviewButton = document.getElementById("review-button");
  var dialog = document.getElementById("submit-dialog");
  var announcer = document.getElementById("countdown-announce");
  var answeredCount = document.getElementById("answered-count");

  var errorSummary = document.getElementById("error-summary");
  if (errorSummary) {
    errorSummary.focus();
  }

  var queues = {}; // item id -> the promise of its last save, so saves of one item stay in order
  var sequence = {}; // item id -> number of the newest save started
  var debounce = {}; // item id -> timer
  var closed = false;
  var submitting = false;

  function byId(fieldset) {
    return fieldset.getAttribute("data-item-id");
  }

  function answerOf(fieldset) {
    var type = fieldset.getAttribute("data-item-type");
    if (type === "single_choice") {
      var checked = fieldset.querySelector("input:checked");
      return checked ? parseInt(checked.value, 10) : null;
    }
    if (type === "multiple_choice") {
      var ids = Array.prototype.map.call(fieldset.querySelectorAll("input:checked"), function (input) {
        return parseInt(input.value, 10);
      });
      return ids.length ? ids : null;
    }
    var field = fieldset.querySelector("input, textarea");
    var value = field ? field.value : "";
    if (value.trim() === "") {
      return null;
    }
    return type === "numeric" ? value.trim() : value;
  }

  function setStatus(fieldset, state, text) {
    var status = document.getElementById("status-" + byId(fieldset));
    fieldset.setAttribute("data-state", state);
    if (!status) {
      return;
    }
    status.classList.toggle("is-error", state === "error");
    status.classList.toggle("is-saved", state === "saved");
    status.textContent = text;
    var field = fieldset.querySelector("input:not([type=radio]):not([type=checkbox]), textarea");
    if (field) {
      field.classList.toggle("is-invalid", state === "error");
      if (state === "error") {
        field.setAttribute("aria-invalid", "true");
      } else {
        field.removeAttribute("aria-invalid");
      }
    }
  }

  function detailOf(body, statusCode) {
    var detail = body && body.detail;
    if (typeof detail === "string") {
      return detail;
    }
    if (Array.isArray(detail)) {
      return detail.join(" ");
    }
    if (detail && typeof detail === "object") {
      return Object.keys(detail)
        .map(function (key) {
          return [].concat(detail[key]).join(" ");
        })
        .join(" ");
    }
    return "the server answered " + statusCode + ".";
  }

  function countAnswered() {
    var answered = fieldsets.filter(function (fieldset) {
      return answerOf(fieldset) !== null;
    }).length;
    if (answeredCount) {
      answeredCount.textContent = String(answered);
    }
    return answered;
  }

  function send(fieldset, mine) {
    var id = byId(fieldset);
    if (mine !== sequence[id]) {
      return Promise.resolve(); // a newer answer for this item is queued behind us
    }
    var number = fieldset.querySelector("input[type=number]");
    if (number && number.validity && number.validity.badInput) {
      setStatus(fieldset, "error", "Not saved: enter a number, such as 3.5.");
      return Promise.resolve();
    }
    return fetch(fieldset.getAttribute("data-save-url"), {
      method: "PUT",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken,
      },
      body: JSON.stringify({ answer: answerOf(fieldset) }),
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            if (mine !== sequence[id]) {
              return;
            }
            if (response.ok) {
              setStatus(fieldset, "saved", "Saved");
            } else {
              setStatus(fieldset, "error", "Not saved: " + detailOf(body, response.status));
            }
          });
      })
      .catch(function () {
        if (mine === sequence[id]) {
          setStatus(
            fieldset,
            "error",
            "Not saved: no connection. Your answer stays on this page and is sent when you submit."
          );
        }
      });
  }

  function save(fieldset) {
    var id = byId(fieldset);
    window.clearTimeout(debounce[id]);
    if (closed) {
      return Promise.resolve();
    }
    sequence[id] = (sequence[id] || 0) + 1;
    var mine = sequence[id];
    fieldset.setAttribute("data-state", "saving");
    queues[id] = (queues[id] || Promise.resolve()).then(function () {
      return send(fieldset, mine);
    });
    return queues[id];
  }

  function flush() {
    fieldsets.forEach(function (fieldset) {
      if (debounce[byId(fieldset)] !== undefined && fieldset.getAttribute("data-state") === "typing") {
        save(fieldset);
      }
    });
    var all = Object.keys(queues).map(function (id) {
      return queues[id];
    });
    var timeout = new Promise(function (resolve) {
      window.setTimeout(resolve, 5000);
    });
    return Promise.race([Promise.all(all), timeout]);
  }

  function fieldsetOf(target) {
    return target && target.closest ? target.closest("fieldset[data-item-id]") : null;
  }

  form.addEventListener("change", function (event) {
    var fieldset = fieldsetOf(event.target);
    if (fieldset) {
      countAnswered();
      save(fieldset);
    }
  });

  form.addEventListener("input", function (event) {
    var fieldset = fieldsetOf(event.target);
    if (!fieldset || event.target.type === "radio" || event.target.type === "checkbox") {
      return;
    }
    countAnswered();
    var id = byId(fieldset);
    window.clearTimeout(debounce[id]);
    fieldset.setAttribute("data-state", "typing");
    debounce[id] = window.setTimeout(function () {
      save(fieldset);
    }, 700);
  });

  function submitNow() {
    if (submitting) {
      return;
    }
    submitting = true;
    if (confirmButton) {
      confirmButton.disabled = true;
      confirmButton.textContent = "Submitting…";
    }
    flush().then(function () {
      var action = document.createElement("input");
      action.type = "hidden";
      action.name = "action";
      action.value = "submit";
      form.appendChild(action);
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (submitter && submitter === confirmButton) {
      event.preventDefault();
      submitNow();
    }
  });

  if (reviewButton && dialog && window.bootstrap && window.bootstrap.Modal) {
    reviewButton.addEventListener("click", function (event) {
      event.preventDefault();
      var answered = countAnswered();
      var unanswered = fieldsets.length - answered;
      dialog.querySelector("[data-answered]").textContent = String(answered);
      dialog.querySelector("[data-unanswered]").textContent = String(unanswered);
      document.getElementById("submit-dialog-unanswered").hidden = unanswered === 0;
      window.bootstrap.Modal.getOrCreateInstance(dialog).show();
    });
    dialog.addEventListener("shown.bs.modal", function () {
      confirmButton.focus();
    });
  }

  // --- the countdown -------------------------------------------------------------------------
  var countdown = document.getElementById("countdown");
  if (countdown) {
    var display = document.getElementById("countdown-value");
    var remaining = parseInt(countdown.getAttribute("data-remaining-seconds"), 10);
    var startedAt = window.performance.now();
    var announced = {};

    var format = function (seconds) {
      var hours = Math.floor(seconds / 3600);
      var minutes = Math.floor((seconds % 3600) / 60);
      var rest = seconds % 60;
      var pad = function (value) {
        return value < 10 ? "0" + value : String(value);
      };
      return hours ? hours + ":" + pad(minutes) + ":" + pad(rest) : minutes + ":" + pad(rest);
    };

    var announce = function (text) {
      if (announcer) {
        announcer.textContent = text;
      }
    };

    var timeUp = function () {
      closed = true;
      countdown.classList.add("is-over");
      announce("Time is up. Your answers are being submitted.");
      fieldsets.forEach(function (fieldset) {
        fieldset.setAttribute("aria-disabled", "true");
      });
      submitNow();
    };

    var tick = function () {
      var elapsed = (window.performance.now() - startedAt) / 1000;
      var left = Math.max(0, Math.ceil(remaining - elapsed));
      display.textContent = format(left);
      countdown.classList.toggle("is-urgent", left <= 60);
      [300, 60].forEach(function (mark) {
        if (left <= mark && remaining > mark && !announced[mark]) {
          announced[mark] = true;
          announce(mark / 60 + (mark === 60 ? " minute" : " minutes") + " left.");
        }
      });
      if (left <= 0) {
        timeUp();
        return;
      }
      window.setTimeout(tick, 500);
    };

    if (!isNaN(remaining)) {
      tick();
    }
  }
})();
