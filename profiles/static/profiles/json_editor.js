// The JSONEditor of each django-json-widget field on the page, with its hidden textarea (the
// widget keeps the editor on its container, whose id is the textarea's without "_textarea").
function eachPropertiesEditor(use) {
  document.querySelectorAll("textarea[id$='_textarea']").forEach(function (textarea) {
    var container = document.getElementById(textarea.id.slice(0, -"_textarea".length));
    if (container && container.jsonEditor) {
      use(container.jsonEditor, textarea);
    }
  });
}

// django-json-widget copies the editor's JSON into the form's hidden textarea only while it
// parses: text typed in the Code view that does not parse was dropped on save, and the page
// said "Nothing changed". On submit, such text goes to the server as typed, which answers
// "Enter a valid JSON." next to the field and shows the text again.
document.addEventListener(
  "submit",
  function () {
    eachPropertiesEditor(function (editor, textarea) {
      try {
        textarea.value = JSON.stringify(editor.get());
      } catch (notJson) {
        textarea.value = editor.getText();
      }
    });
  },
  true
);

// Custom properties are an object: a string in the editor is refused text shown again (the
// widget gives it as a JSON string). It goes back to the Code view as it was typed, to fix.
document.addEventListener("DOMContentLoaded", function () {
  eachPropertiesEditor(function (editor) {
    var value = editor.get();
    if (typeof value === "string") {
      editor.setMode("code");
      editor.setText(value);
    }
  });
});
