// Temporary dev driver (to be deleted): enrich_dev train OUT EPOCHS DATA... | evalner DATA [MODEL] | evalsent DATA
use std::path::{Path, PathBuf};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    match a[1].as_str() {
        "train" => {
            let data: Vec<PathBuf> = a[4..].iter().map(PathBuf::from).collect();
            newsflow::enrich::commands::train_ner(&data, Path::new(&a[2]), a[3].parse()?)
        }
        "evalner" => {
            newsflow::enrich::commands::eval_ner(Path::new(&a[2]), a.get(3).map(Path::new))
        }
        "evalsent" => newsflow::enrich::commands::eval_sentiment(Path::new(&a[2])),
        "seed" => {
            use newsflow::enrich::Enricher;
            let raw = std::fs::read_to_string(&a[2])?;
            let (title, rest) = raw.split_once('\n').unwrap();
            let body = rest.split("Leave a Reply").next().unwrap().trim();
            let e = newsflow::enrich::LocalEnricher::load_default()?;
            let out = e.enrich(&newsflow::enrich::Document {
                title,
                body,
                published: chrono::NaiveDate::from_ymd_opt(2022, 11, 3),
                language: None,
            });
            for ent in &out.entities {
                println!(
                    "{} {:?} {:.2} {:?} {:?} :: {:?}",
                    ent.text,
                    ent.kind,
                    ent.salience,
                    ent.sentiment,
                    ent.normalized,
                    ent.mentions
                        .iter()
                        .map(|m| m.text.as_str())
                        .collect::<Vec<_>>()
                );
            }
            println!("{:?}", out.sentiment);
            Ok(())
        }
        _ => anyhow::bail!("?"),
    }
}
#[allow(dead_code)]
fn dump() {}
