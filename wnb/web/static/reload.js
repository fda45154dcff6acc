// The proposal job page (ruleset_job.html): reload every 2 seconds until the backtest is done, unless the person
// stops it (WCAG 2.2.1: a <meta refresh> cannot be stopped). The page works without it ("Check again").
(() => {
  const stop = document.getElementById("stop-reloading");
  const timer = setTimeout(() => location.reload(), 2000);
  stop.hidden = false;
  stop.addEventListener("click", () => {
    clearTimeout(timer);
    document.getElementById("reloading").firstChild.textContent = "Reloading stopped. ";
    stop.hidden = true;
  });
})();
