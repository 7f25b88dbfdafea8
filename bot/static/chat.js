// Polku's web chat: send what the person types, poll for the worker's replies.
"use strict";
(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("compose");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  let after = 0;
  let delay = 1000;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function show(message) {
    if (document.getElementById("m" + message.id)) return;
    const hint = document.getElementById("hint");
    if (hint) hint.remove();
    const bubble = document.createElement("div");
    bubble.id = "m" + message.id;
    bubble.className = "message " + message.direction;
    bubble.dir = "auto";
    bubble.textContent = message.text;
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
  }

  async function poll() {
    try {
      const response = await fetch("/chat/messages?after=" + after,
        { credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        data.messages.forEach(function (message) {
          show(message);
          after = Math.max(after, message.id);
        });
        if (data.language) document.documentElement.lang = data.language;
        log.dir = data.rtl ? "rtl" : "ltr";
        delay = data.messages.length ? 1000 : Math.min(delay * 1.5, 5000);
        status.textContent = "";
      }
    } catch (error) {
      status.textContent = "…";
      delay = 5000;
    }
    setTimeout(poll, delay);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const button = document.getElementById("send");
    button.disabled = true;
    const body = JSON.stringify({ id: newId(), text: text });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const response = await fetch("/chat/messages", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: body,
        });
        if (response.ok) {
          input.value = "";
          delay = 500;
          break;
        }
        status.textContent = response.status >= 500 ? "…" : "!";
        if (response.status < 500) break;
      } catch (error) {
        status.textContent = "…";
      }
      await new Promise(function (resolve) { setTimeout(resolve, 1000); });
    }
    button.disabled = false;
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  poll();
})();
