// Tell the server the browser's time zone once, so times show in the viewer's zone.
(function () {
  var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (tz && document.cookie.indexOf("tz=" + encodeURIComponent(tz)) === -1) {
    document.cookie = "tz=" + encodeURIComponent(tz) + "; path=/console; SameSite=Strict";
  }
})();

// A section with data-refresh="URL" data-every="SECONDS" replaces its content from URL
// (a partial page) every so often, without a full reload; it pauses while the tab is hidden.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = parseInt(el.getAttribute("data-every") || "15", 10) * 1000;
    setInterval(function () {
      if (document.hidden) return;
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) el.innerHTML = html; });
    }, every);
  });
});
