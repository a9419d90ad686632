// Outputs in sync: every video.ab-sync on the page follows one timeline (play, pause, scrub,
// step a frame), and the flip view shows one of two outputs at the same frame. No network.
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("ab-data").textContent);
  const fps = data.fps;
  const lastFrame = Math.max(0, data.frames - 1);
  const all = Array.from(document.querySelectorAll("video.ab-sync"));
  const scrub = document.getElementById("ab-scrub");
  const frameLabel = document.getElementById("ab-frame");
  const playButton = document.getElementById("ab-play");
  const flipButton = document.getElementById("ab-flip");
  const flipLabel = document.getElementById("ab-flip-label");
  const flipVideos = { a: document.getElementById("ab-flip-a"), b: document.getElementById("ab-flip-b") };
  const flipSelects = { a: document.getElementById("ab-select-a"), b: document.getElementById("ab-select-b") };
  let frame = 0;
  let playing = false;
  let shown = "a";

  // The middle of a frame's display interval: a seek there cannot round onto a neighbour.
  const timeOf = (index) => (index + 0.5) / fps;
  const frameOf = (seconds) => Math.min(lastFrame, Math.max(0, Math.floor(seconds * fps + 1e-6)));
  const playable = () => all.filter((video) => !video.error && video.dataset.failed !== "1");

  function showFrame(index) {
    scrub.value = String(index);
    frameLabel.textContent = `frame ${index} / ${lastFrame}`;
  }

  function seek(index) {
    frame = Math.min(lastFrame, Math.max(0, Math.round(index)));
    for (const video of playable()) {
      video.playbackRate = 1;
      video.currentTime = timeOf(frame);
    }
    showFrame(frame);
  }

  function leader() {
    const videos = playable();
    return videos.find((video) => video.readyState >= 2) || videos[0];
  }

  function follow() {
    if (!playing) return;
    const lead = leader();
    if (lead) {
      const now = lead.currentTime;
      for (const video of playable()) {
        if (video === lead) continue;
        const drift = video.currentTime - now;
        if (Math.abs(drift) > 2 / fps) {
          video.currentTime = now;
        } else {
          video.playbackRate = Math.min(1.1, Math.max(0.9, 1 - drift * 2));
        }
      }
      frame = frameOf(now);
      showFrame(frame);
      if (lead.ended || frame >= lastFrame) {
        pause();
        return;
      }
    }
    requestAnimationFrame(follow);
  }

  function play() {
    if (playing) return;
    if (frame >= lastFrame) seek(0);
    playing = true;
    playButton.textContent = "Pause";
    for (const video of playable()) video.play().catch(() => undefined);
    requestAnimationFrame(follow);
  }

  function pause() {
    const lead = leader();
    playing = false;
    playButton.textContent = "Play";
    for (const video of playable()) video.pause();
    seek(lead ? frameOf(lead.currentTime) : frame);
  }

  function step(delta) {
    if (playing) pause();
    seek(frame + delta);
  }

  function flip() {
    shown = shown === "a" ? "b" : "a";
    const other = shown === "a" ? "b" : "a";
    flipVideos[shown].classList.remove("ab-hidden");
    flipVideos[other].classList.add("ab-hidden");
    const select = flipSelects[shown];
    flipLabel.textContent = `${shown.toUpperCase()}: ${select.options[select.selectedIndex].text}`;
  }

  function choose(slot) {
    const video = flipVideos[slot];
    video.dataset.failed = "0";
    video.src = flipSelects[slot].value;
    video.addEventListener("loadedmetadata", () => { video.currentTime = timeOf(frame); }, { once: true });
    if (playing) video.play().catch(() => undefined);
    if (slot === shown) { shown = slot === "a" ? "b" : "a"; flip(); }
  }

  for (const video of all) {
    video.addEventListener("error", () => {
      video.dataset.failed = "1";
      const note = video.parentElement.querySelector(".ab-unplayable");
      if (note) note.hidden = false;
    });
  }
  playButton.addEventListener("click", () => (playing ? pause() : play()));
  document.getElementById("ab-back").addEventListener("click", () => step(-1));
  document.getElementById("ab-forward").addEventListener("click", () => step(1));
  scrub.addEventListener("input", () => {
    if (playing) { playing = false; playButton.textContent = "Play"; for (const video of playable()) video.pause(); }
    seek(Number(scrub.value));
  });
  flipButton.addEventListener("click", flip);
  flipSelects.a.addEventListener("change", () => choose("a"));
  flipSelects.b.addEventListener("change", () => choose("b"));
  for (const link of document.querySelectorAll("a[data-frame]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      if (playing) pause();
      seek(Number(link.dataset.frame));
      document.getElementById("ab-players").scrollIntoView();
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (event.key === " ") { event.preventDefault(); playing ? pause() : play(); }
    else if (event.key === "ArrowLeft") step(-1);
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "f" || event.key === "F") flip();
  });
  showFrame(0);
  window.abReview = { seek, play, pause, flip, step, frame: () => frame, timeOf, frameOf };
})();

// Sortable tables: a click on a column heading sorts by its cells' data-sort values.
(() => {
  "use strict";
  for (const table of document.querySelectorAll("table.ab-sortable")) {
    const headings = Array.from(table.querySelectorAll("thead th"));
    headings.forEach((heading, column) => {
      heading.addEventListener("click", () => {
        const ascending = heading.getAttribute("aria-sort") !== "ascending";
        headings.forEach((other) => other.removeAttribute("aria-sort"));
        heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent;
        rows.sort((left, right) => {
          const a = key(left), b = key(right);
          if (a === "" || b === "") return (a === "") - (b === "");  // unmeasured rows last
          const numbers = !isNaN(Number(a)) && !isNaN(Number(b));
          const order = numbers ? Number(a) - Number(b) : String(a).localeCompare(String(b));
          return ascending ? order : -order;
        });
        for (const row of rows) body.appendChild(row);
      });
    });
  }
})();
