//! Form fields with their labels and errors tied together (`for`/`id`, `aria-describedby`,
//! `aria-invalid`), and the summary of a form's errors announced at the top.

use std::collections::BTreeMap;

use maud::{html, Markup};

/// The errors of a submitted form, by field name.
#[derive(Clone, Debug, Default)]
pub struct Errors(pub BTreeMap<String, String>);

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The list of errors, each a link to its field, announced to screen readers.
    pub fn summary(&self) -> Markup {
        html! {
            @if !self.0.is_empty() {
                div.error-summary role="alert" aria-labelledby="erreurs-titre" {
                    h2 id="erreurs-titre" { "Le formulaire contient des erreurs" }
                    ul {
                        @for (field, message) in &self.0 {
                            li { a href={ "#" (field) } { (message) } }
                        }
                    }
                }
            }
        }
    }
}

/// One labelled input. `kind` is the HTML input type; `autocomplete` helps browsers fill it in.
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub required: bool,
    pub autocomplete: Option<&'a str>,
}

impl Input<'_> {
    pub fn render(&self, errors: &Errors) -> Markup {
        let error = errors.get(self.name);
        let hint_id = format!("{}-aide", self.name);
        let error_id = format!("{}-erreur", self.name);
        let described = match (self.hint.is_some(), error.is_some()) {
            (true, true) => Some(format!("{hint_id} {error_id}")),
            (true, false) => Some(hint_id.clone()),
            (false, true) => Some(error_id.clone()),
            (false, false) => None,
        };
        let keep_value = self.kind != "password";
        html! {
            label for=(self.name) {
                (self.label)
                @if !self.required { " (facultatif)" }
                @if let Some(hint) = self.hint { span.hint id=(hint_id) { (hint) } }
            }
            @if let Some(message) = error { span.field-error id=(error_id) { "Erreur : " (message) } }
            input type=(self.kind) id=(self.name) name=(self.name)
                value=[keep_value.then_some(self.value)]
                required[self.required]
                autocomplete=[self.autocomplete]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described];
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}
