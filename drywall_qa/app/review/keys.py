"""Review's keyboard shortcuts, as the page script gradio runs on load (``launch(js=...)``): keys 1–4 pick the
decision (prediction correct, prediction wrong, ground truth wrong, exclude image: a click on that choice of the
decision radio, which saves it), ``n`` shows the next undecided image. Keys act only while the Review tab is shown and
never while typing in a text box or painting in the editor; Escape leaves a text box so the keys work again."""

#: element ids the script drives
DECISION_ID, NEXT_ID = "review-decision", "review-next"
KEYS = {"1": 0, "2": 1, "3": 2, "4": 3}

KEYS_JS = """
() => {
  const decisions = %(keys)s;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("textarea, input:not([type=radio]):not([type=checkbox]), " +
                                        "[contenteditable=true], canvas")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const radio = document.getElementById("%(decision)s");
    if (!radio || radio.offsetParent === null) return;
    if (event.key in decisions) {
      const choice = radio.querySelectorAll("label")[decisions[event.key]];
      if (choice) choice.click();
    } else if (event.key === "n") {
      document.getElementById("%(next)s").click();
    } else {
      return;
    }
    event.preventDefault();
  });
}
""" % {"keys": str(KEYS).replace("'", '"'), "decision": DECISION_ID, "next": NEXT_ID}
