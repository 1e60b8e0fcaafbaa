//! Nova's `extra_specs_ops.match(value, req)` (`nova/scheduler/filters/extra_specs_ops.py`,
//! `../shared/reference/scheduler.md` §1.6): the first word of the requirement is the
//! operator. Where Nova raised (a non-number under a float operator, `<or>` with nothing
//! after it) this answers "no match".

fn float(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok()
}

fn floats(value: &str, operand: &str, op: fn(f64, f64) -> bool) -> bool {
    matches!((float(value), float(operand)), (Some(a), Some(b)) if op(a, b))
}

/// Whether the host's `value` satisfies `requirement`.
#[must_use]
pub fn matches(value: Option<&str>, requirement: &str) -> bool {
    let mut words = requirement.split_whitespace();
    let op = words.next();
    let known = matches!(
        op,
        Some(
            "=" | "<in>"
                | "<all-in>"
                | "=="
                | "!="
                | ">="
                | "<="
                | "s=="
                | "s!="
                | "s<"
                | "s<="
                | "s>"
                | "s>="
                | "<or>"
        )
    );
    if !known {
        // No operator: plain string equality with the whole requirement.
        return value == Some(requirement);
    }
    let Some(value) = value else {
        return false;
    };
    let rest: Vec<&str> = words.collect();
    if op == Some("<or>") {
        // `<or> a <or> b <or> c`: every other word is an alternative.
        return rest
            .iter()
            .enumerate()
            .any(|(i, w)| i % 2 == 0 && *w == value);
    }
    if op == Some("<all-in>") {
        return !rest.is_empty() && rest.iter().all(|w| value.contains(w));
    }
    let Some(operand) = rest.first().copied() else {
        return false;
    };
    match op {
        // Yes: "=" means "at least".
        Some("=") => floats(value, operand, |a, b| a >= b),
        Some("==") => floats(value, operand, |a, b| (a - b).abs() < f64::EPSILON),
        Some("!=") => floats(value, operand, |a, b| (a - b).abs() >= f64::EPSILON),
        Some(">=") => floats(value, operand, |a, b| a >= b),
        Some("<=") => floats(value, operand, |a, b| a <= b),
        Some("<in>") => value.contains(operand),
        Some("s==") => value == operand,
        Some("s!=") => value != operand,
        Some("s<") => value < operand,
        Some("s<=") => value <= operand,
        Some("s>") => value > operand,
        Some("s>=") => value >= operand,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    /// Nova's `test_extra_specs_ops.py`, case by case.
    #[test]
    fn nova_extra_specs_ops_cases() {
        for (value, req, want) in [
            ("123", "123", true),
            ("124", "123", false),
            ("124", "= 123", true),
            ("34", "= 234", false),
            ("123", "= 123", true),
            ("12", "== 12", true),
            ("13", "== 12", false),
            ("12", "!= 12", false),
            ("13", "!= 12", true),
            ("12", ">= 12", true),
            ("11", ">= 12", false),
            ("12", "<= 12", true),
            ("13", "<= 12", false),
            ("3", "> 2", false), // "> 2" is not an operator: literal comparison
            ("> 2", "> 2", true),
            ("123", "s== 123", true),
            ("1234", "s== 123", false),
            ("1234", "s!= 123", true),
            ("123", "s!= 123", false),
            ("1000", "s>= 234", false),
            ("1000", "s<= 234", true),
            ("2000", "s< 1000", false),
            ("1000", "s< 2000", true),
            ("2000", "s> 1000", true),
            ("12311321", "<in> 11", true),
            ("12311321", "<in> 12311321", true),
            ("12310321", "<in> 11", false),
            ("12311321", "<in> 12311321 <in>", true),
            ("aes mmx aux", "<all-in> aes mmx", true),
            ("aes mmx aux", "<all-in> aes mmx txt", false),
            ("12", "<or> 11 <or> 12", true),
            ("13", "<or> 11 <or> 12", false),
            ("11", "<or> 11 <or>", true),
            ("13", "<or> 11 <or> 12 <or>", false),
            ("abc", "= 1", false),
            ("12", "<or>", false),
            ("12", "=", false),
        ] {
            assert_eq!(matches(Some(value), req), want, "{value:?} vs {req:?}");
        }
        assert!(!matches(None, "= 1"));
        assert!(!matches(None, "<or> a <or> b"));
        assert!(!matches(None, "plain"));
    }
}
