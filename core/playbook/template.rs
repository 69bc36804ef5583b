//! Templates in parameter values and `when`: minijinja, strict (an undefined name is an error).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// Names a template may start with.
pub const ROOTS: [&str; 6] = ["vars", "host", "hosts", "groups", "facts", "steps"];

/// A strict template environment: undefined names fail instead of rendering as "".
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // `{{ vars.path | quote }}` puts a value into shell text (a command's `run`) as one word.
    env.add_filter("quote", |value: String| {
        graphrun_plugin_api::shell::quote(&value)
    });
    env
}

/// Renders every template string inside `value` (recursively) with `context`.
pub fn render_value(
    env: &Environment<'_>,
    value: &Value,
    context: &minijinja::Value,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) if graphrun_plugin_api::params::is_template(text) => Value::String(
            env.render_str(text, context)
                .map_err(|err| describe(&err))?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_value(env, item, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(env, v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates a `when` expression (with or without `{{ }}`) to a boolean.
pub fn evaluate_when(
    env: &Environment<'_>,
    expression: &str,
    context: &minijinja::Value,
) -> Result<bool, String> {
    let expression = strip_braces(expression);
    let compiled = env
        .compile_expression(expression)
        .map_err(|err| describe(&err))?;
    let value = compiled.eval(context).map_err(|err| describe(&err))?;
    Ok(value.is_true())
}

/// `when` may be written as `{{ expr }}` or as a bare expression.
pub fn strip_braces(expression: &str) -> &str {
    let trimmed = expression.trim();
    trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map_or(trimmed, str::trim)
}

/// The dotted names a template reads (`vars.root`, `host.name`…), or its syntax error.
pub fn referenced_names(
    env: &Environment<'_>,
    text: &str,
    expression: bool,
) -> Result<Vec<String>, String> {
    let names = if expression {
        env.compile_expression(strip_braces(text))
            .map_err(|err| describe(&err))?
            .undeclared_variables(true)
    } else {
        env.template_from_str(text)
            .map_err(|err| describe(&err))?
            .undeclared_variables(true)
    };
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    Ok(names)
}

/// One line for a template error, with its cause chain.
pub fn describe(err: &minijinja::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quote_filter_makes_one_shell_word() {
        let env = environment();
        let context =
            minijinja::context! { vars => minijinja::context! { name => "a b'; rm -rf / #" } };
        let text = env
            .render_str("touch {{ vars.name | quote }}", &context)
            .unwrap();
        assert_eq!(text, r#"touch 'a b'\''; rm -rf / #'"#);
    }

    #[test]
    fn undefined_names_are_errors() {
        let env = environment();
        let err = env
            .render_str(
                "{{ vars.missing }}",
                minijinja::context! { vars => minijinja::context! {} },
            )
            .unwrap_err();
        assert!(
            describe(&err).starts_with("undefined value"),
            "{}",
            describe(&err)
        );
    }
}
