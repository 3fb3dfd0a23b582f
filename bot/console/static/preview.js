// Live preview for the message editor: posts the text as it is typed and shows
// what a phone would receive, its encoding, length, segments and any problems.
(function () {
  "use strict";

  var form = document.getElementById("editor");
  if (!form) {
    return;
  }
  var source = document.getElementById("source");
  var token = document.querySelector('meta[name="csrf-token"]').content;
  var latest = 0;
  var timer = null;

  function show(data) {
    document.getElementById("preview-text").textContent = data.text || "(nothing to show)";
    document.getElementById("preview-encoding").textContent = data.encoding;
    document.getElementById("preview-length").textContent = String(data.length);
    document.getElementById("preview-segments").textContent = String(data.segments);
    var ucs2 = document.getElementById("preview-ucs2");
    ucs2.hidden = data.ucs2_chars.length === 0;
    ucs2.querySelector("span").textContent = data.ucs2_chars.join(" ");
    var list = document.getElementById("preview-problems");
    list.replaceChildren();
    data.problems.forEach(function (problem) {
      var item = document.createElement("li");
      var label = document.createElement("strong");
      item.className = "problem-" + problem.level;
      label.textContent = problem.level === "error" ? "Error:" : "Warning:";
      item.append(label, " " + problem.message);
      list.append(item);
    });
  }

  function refresh() {
    var mine = ++latest;
    fetch(form.dataset.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token },
      body: new URLSearchParams({ source: source.value }),
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("preview failed: " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        // An older answer arriving late must not replace a newer one.
        if (mine === latest) {
          show(data);
        }
      })
      .catch(function () {
        if (mine === latest) {
          document.getElementById("preview-text").textContent =
            "The preview is unavailable right now; saving still checks the text.";
        }
      });
  }

  source.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  });
  // Saving leaves the page: a preview still to come would only race the save.
  form.addEventListener("submit", function () {
    clearTimeout(timer);
  });
  // Text typed before this script ran (it is deferred) gets its preview too.
  if (source.value !== source.defaultValue) {
    refresh();
  }
})();
