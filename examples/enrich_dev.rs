// Temporary dev driver (to be deleted): enrich_dev train OUT EPOCHS DATA... | evalner DATA [MODEL] | evalsent DATA
use std::path::{Path, PathBuf};
fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    match a[1].as_str() {
        "train" => {
            let data: Vec<PathBuf> = a[4..].iter().map(PathBuf::from).collect();
            newsflow::enrich::commands::train_ner(&data, Path::new(&a[2]), a[3].parse()?)
        }
        "evalner" => newsflow::enrich::commands::eval_ner(Path::new(&a[2]), a.get(3).map(Path::new)),
        "evalsent" => newsflow::enrich::commands::eval_sentiment(Path::new(&a[2])),
        _ => anyhow::bail!("?"),
    }
}
