//! Synthetic images behind the report's file ids: small SVGs, drawn in code, that say in large
//! letters that they are test images. A document image shows what the tester chose (as a real
//! document would), so redaction has real contents to delete.

use crate::hosted_page::escape;
use crate::person::VerifiedPerson;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;

fn text(x: u32, y: u32, size: u32, weight: &str, fill: &str, content: &str) -> String {
    format!(
        "<text x=\"{x}\" y=\"{y}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{fill}\">{}</text>",
        escape(content)
    )
}

fn frame(banner: &str, body: &str, footer: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">\
<rect x=\"3\" y=\"3\" width=\"634\" height=\"394\" rx=\"22\" fill=\"#f4f6fb\" stroke=\"#635bff\" stroke-width=\"6\"/>\
<rect x=\"3\" y=\"3\" width=\"634\" height=\"58\" rx=\"22\" fill=\"#c0123c\"/>\
{banner}{body}\
<text x=\"320\" y=\"250\" text-anchor=\"middle\" transform=\"rotate(-18 320 220)\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"70\" font-weight=\"bold\" fill=\"#c0123c\" fill-opacity=\"0.18\">TEST · NOT REAL</text>\
{footer}</svg>",
        banner = text(24, 42, 26, "bold", "#ffffff", banner),
        footer = text(24, 384, 13, "normal", "#697386", footer),
    )
}

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("—")
}

/// One side (`front` or `back`) of the identity document.
pub fn document(session_id: &str, side: &str, p: &VerifiedPerson) -> String {
    let kind = p.document.kind.replace('_', " ").to_uppercase();
    let country = or_dash(&p.document.issuing_country);
    let mut body = text(
        24,
        96,
        20,
        "bold",
        "#1a1f36",
        &format!("{kind} · {country} · {}", side.to_uppercase()),
    );
    if side == "front" {
        // A face-shaped placeholder where the photo would be.
        body.push_str("<rect x=\"24\" y=\"120\" width=\"150\" height=\"190\" rx=\"8\" fill=\"#dfe3ec\"/>\
<circle cx=\"99\" cy=\"185\" r=\"38\" fill=\"#aab2c5\"/><rect x=\"49\" y=\"235\" width=\"100\" height=\"60\" rx=\"30\" fill=\"#aab2c5\"/>");
        let name = format!("{} {}", or_dash(&p.first_name), or_dash(&p.last_name));
        let dob = p.dob.map(|d| d.iso()).unwrap_or_else(|| "—".into());
        let expires = p
            .document
            .expiration_date
            .map(|d| d.iso())
            .unwrap_or_else(|| "—".into());
        let rows = [
            ("Name", name),
            ("Date of birth", dob),
            ("Document no.", or_dash(&p.document.number).to_string()),
            ("Expires", expires),
            ("City", or_dash(&p.address.city).to_string()),
        ];
        for (i, (label, value)) in rows.iter().enumerate() {
            let y = 140 + 36 * u32::try_from(i).unwrap_or(0);
            body.push_str(&text(196, y, 13, "normal", "#697386", label));
            body.push_str(&text(196, y + 17, 18, "bold", "#1a1f36", value));
        }
    } else {
        // A barcode-like band, as on the back of many cards.
        for i in 0..48u32 {
            let w = 2 + (i * 7 % 5);
            body.push_str(&format!(
                "<rect x=\"{}\" y=\"130\" width=\"{w}\" height=\"90\" fill=\"#1a1f36\"/>",
                40 + i * 11
            ));
        }
        body.push_str(&text(
            24,
            270,
            18,
            "bold",
            "#1a1f36",
            "Nothing on this image was issued by anyone.",
        ));
    }
    frame(
        "TEST DOCUMENT — NOT REAL",
        &body,
        &format!("Stripe emulator · session {session_id} · document {side}"),
    )
}

/// The selfie of the selfie check.
pub fn selfie(session_id: &str) -> String {
    let body = "<circle cx=\"320\" cy=\"185\" r=\"70\" fill=\"#aab2c5\"/>\
<circle cx=\"296\" cy=\"170\" r=\"8\" fill=\"#1a1f36\"/><circle cx=\"344\" cy=\"170\" r=\"8\" fill=\"#1a1f36\"/>\
<rect x=\"295\" y=\"210\" width=\"50\" height=\"8\" rx=\"4\" fill=\"#1a1f36\"/>\
<rect x=\"220\" y=\"262\" width=\"200\" height=\"90\" rx=\"45\" fill=\"#aab2c5\"/>";
    frame(
        "TEST SELFIE — NOT REAL",
        body,
        &format!("Stripe emulator · session {session_id} · selfie"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::person::Date;

    #[test]
    fn images_are_marked_and_escape_what_the_tester_typed() {
        let p = VerifiedPerson {
            first_name: Some("<script>".into()),
            last_name: Some("O'Hara & Co".into()),
            dob: Date::new(2, 3, 1980),
            address: crate::person::Address {
                line1: None,
                line2: None,
                city: Some("Paris".into()),
                state: None,
                postal_code: None,
                country: Some("FR".into()),
            },
            email: None,
            phone: None,
            id_number: None,
            id_number_type: None,
            document: crate::person::DocumentFacts {
                kind: "id_card".into(),
                issuing_country: Some("FR".into()),
                number: Some("X123".into()),
                expiration_date: None,
                issued_date: None,
            },
        };
        let front = document("vs_1abc", "front", &p);
        assert!(front.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(front.contains("TEST DOCUMENT — NOT REAL"));
        assert!(front.contains("vs_1abc"));
        assert!(front.contains("ID CARD · FR · FRONT"));
        assert!(front.contains("1980-03-02") && front.contains("X123"));
        assert!(!front.contains("<script>"));
        assert!(front.contains("&lt;script&gt; O&#39;Hara &amp; Co"));
        let back = document("vs_1abc", "back", &p);
        assert!(back.contains("BACK") && !back.contains("X123"));
        assert!(selfie("vs_1abc").contains("TEST SELFIE — NOT REAL"));
    }
}
