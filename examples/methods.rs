//! Prints the method registry: `cargo xtask methods [--json]`.

fn main() -> anyhow::Result<()> {
    let methods = mtl::losses::list();
    if std::env::args().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&methods)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<9} {:<48} {:<28} tested by",
        "name", "level", "paper", "defaults"
    );
    for m in &methods {
        let level = format!("{:?}", m.level).to_lowercase();
        println!(
            "{:<14} {:<9} {:<48} {:<28} {}",
            m.name, level, m.paper, m.defaults, m.tested_by
        );
    }
    println!("\n{} methods", methods.len());
    Ok(())
}
