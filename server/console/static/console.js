// statemill console: copy buttons, and JSON editors that refuse to submit text that is not JSON.
"use strict";

document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(done);
  } else {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
    selection.removeAllRanges();
    done();
  }
});

function jsonProblem(textarea) {
  try {
    JSON.parse(textarea.value);
    return "";
  } catch (error) {
    return "Not valid JSON: " + error.message;
  }
}

function showProblem(textarea) {
  const problem = jsonProblem(textarea);
  const note = textarea.closest("form").querySelector(".json-error");
  if (note) note.textContent = problem;
  textarea.setAttribute("aria-invalid", problem ? "true" : "false");
  return problem;
}

document.addEventListener("input", function (event) {
  if (event.target.matches("textarea[data-json]")) showProblem(event.target);
});

document.addEventListener("submit", function (event) {
  const editors = event.target.querySelectorAll("textarea[data-json]");
  for (const textarea of editors) {
    if (showProblem(textarea)) {
      event.preventDefault();
      textarea.focus();
      return;
    }
  }
});
