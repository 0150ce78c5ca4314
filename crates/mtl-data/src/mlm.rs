//! Masked-language-model pretraining data (Devlin et al., "BERT", NAACL 2019, §3.1):
//! token ids in, and for each batch a fresh draw of which tokens the model must
//! recover (dynamic masking, as RoBERTa does), so the encoder learns from raw text
//! before multi-task fine-tuning.
//!
//! Of the real tokens that are not special (padding, `[CLS]`, `[SEP]`, …), each is
//! selected with probability `p` (0.15); a selected token becomes `[MASK]` with
//! probability 0.8, a uniformly random ordinary token with 0.1, and stays itself with
//! 0.1. The target is the original id at selected tokens and the padding label
//! ([`MLM_IGNORE`], −1, the default padding label of `mtl_heads::SequenceHead`) elsewhere, so a sequence head
//! over the vocabulary is the MLM head and only selected tokens count in its loss.
//! A sequence with no selected token contributes nothing.

use crate::batch::Batch;
use crate::joint_data::{batch_rows, feed_text, JointData};
use crate::tensor_dataset::feed_tensor;
use mtl_core::{Error, Result, SeededRng, TaskTarget};
use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// The target of a token the model need not predict.
pub const MLM_IGNORE: i64 = -1;

/// Token sequences for masked-language-model training: one task, `mlm`, whose targets
/// are drawn per batch: 15 % of the ordinary tokens, of which 80 % become `[MASK]`, 10 %
/// a random token and 10 % stay.
///
/// ```
/// use mtl_data::{JointData, MaskedLmData};
/// use tch::Tensor;
///
/// // Ids: 0 padding, 1 [CLS], 2 [SEP], 3 [MASK], 4.. ordinary tokens.
/// let ids = Tensor::randint_low(4, 30, [64, 16], (tch::Kind::Int64, tch::Device::Cpu));
/// let data = MaskedLmData::new(ids, 30, 3, &[0, 1, 2])?;
/// let mut rng = mtl_core::derive_rng(0, "batches");
/// let batch = data.joint_batches(64, Some(&mut rng))?.next().unwrap()?;
/// let selected = batch.targets[0].values.ne(mtl_data::MLM_IGNORE).sum(tch::Kind::Int64);
/// let share = selected.int64_value(&[]) as f64 / (64.0 * 16.0);
/// assert!((share - 0.15).abs() < 0.03, "{share}");
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug)]
pub struct MaskedLmData {
    ids: Tensor,
    vocab: i64,
    mask_id: i64,
    special: Vec<i64>,
    probability: f64,
}

impl Clone for MaskedLmData {
    fn clone(&self) -> Self {
        MaskedLmData {
            ids: self.ids.shallow_clone(),
            vocab: self.vocab,
            mask_id: self.mask_id,
            special: self.special.clone(),
            probability: self.probability,
        }
    }
}

impl MaskedLmData {
    /// `ids` `Int64 [N, T]` in `0..vocab` (padding among the `special` ids, which are
    /// never selected), `[MASK]` = `mask_id`, selection probability 0.15.
    ///
    /// Errors: ids that are not an integer `[N, T]` tensor in `0..vocab`, a `mask_id`
    /// outside the vocabulary, or a vocabulary with no ordinary token to draw.
    pub fn new(ids: Tensor, vocab: i64, mask_id: i64, special: &[i64]) -> Result<Self> {
        let ids = ids.f_to_device(Device::Cpu)?;
        if ids.dim() != 2 || ids.is_floating_point() {
            return Err(Error::shape(
                "MaskedLmData ids",
                "integer [sequences, tokens]",
                format!("{:?} {:?}", ids.kind(), ids.size()),
            ));
        }
        let ids = ids.f_to_kind(Kind::Int64)?;
        if ids.numel() > 0 {
            let (lo, hi) = (
                ids.f_min()?.f_int64_value(&[])?,
                ids.f_max()?.f_int64_value(&[])?,
            );
            if lo < 0 || hi >= vocab {
                return Err(Error::shape(
                    "MaskedLmData ids",
                    format!("ids in 0..{vocab}"),
                    format!("ids from {lo} to {hi}"),
                ));
            }
        }
        if !(0..vocab).contains(&mask_id) {
            return Err(Error::config(format!(
                "MaskedLmData: mask id {mask_id} is outside the vocabulary 0..{vocab}"
            )));
        }
        let mut special = special.to_vec();
        special.push(mask_id);
        special.sort_unstable();
        special.dedup();
        if (0..vocab).all(|t| special.binary_search(&t).is_ok()) {
            return Err(Error::config(
                "MaskedLmData: every token of the vocabulary is special; none to draw",
            ));
        }
        Ok(MaskedLmData {
            ids,
            vocab,
            mask_id,
            special,
            probability: 0.15,
        })
    }

    /// Sets the selection probability (in (0, 1)).
    pub fn with_probability(mut self, p: f64) -> Result<Self> {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::config(format!(
                "MaskedLmData: selection probability must be in (0, 1), got {p}"
            )));
        }
        self.probability = p;
        Ok(self)
    }

    /// The sequences `rows` with targets drawn from `rng` (none selected, inputs as
    /// they are, without `rng`: evaluation sees a fixed draw instead, see
    /// [`JointData::joint_batches`]).
    fn masked(&self, rows: &[usize], rng: &mut SeededRng) -> Result<Batch> {
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let ids = self.ids.f_index_select(0, &index)?;
        let mut input: Vec<i64> = Vec::try_from(ids.f_reshape([-1])?)
            .map_err(|e: tch::TchError| Error::config(e.to_string()))?;
        let mut target = vec![MLM_IGNORE; input.len()];
        let ordinary: Vec<i64> = (0..self.vocab)
            .filter(|t| self.special.binary_search(t).is_err())
            .collect();
        for (x, y) in input.iter_mut().zip(target.iter_mut()) {
            if self.special.binary_search(x).is_ok() || !rng.gen_bool(self.probability) {
                continue;
            }
            *y = *x;
            let roll: f64 = rng.gen();
            if roll < 0.8 {
                *x = self.mask_id;
            } else if roll < 0.9 {
                *x = *ordinary.choose(rng).unwrap_or(x);
            }
        }
        let shape = ids.size();
        Ok(Batch {
            x: Tensor::from_slice(&input).f_view(shape.as_slice())?,
            targets: vec![TaskTarget::new(
                Tensor::from_slice(&target).f_view(shape.as_slice())?,
            )],
            rows: rows.to_vec(),
        })
    }
}

impl JointData for MaskedLmData {
    fn len(&self) -> usize {
        self.ids.size()[0] as usize
    }

    fn num_tasks(&self) -> usize {
        1
    }

    fn task_names(&self) -> Vec<String> {
        vec!["mlm".into()]
    }

    /// Training batches (`Some(rng)`) draw their masks from a generator seeded by
    /// `rng` after the shuffle; evaluation batches (`None`) use one fixed draw, so a
    /// validation loss is comparable from epoch to epoch.
    fn joint_batches(
        &self,
        batch_size: usize,
        rng: Option<&mut SeededRng>,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        use rand::SeedableRng;
        let mut rng = rng;
        let chunks = batch_rows(JointData::len(self), batch_size, rng.as_deref_mut())?;
        let mut draws = match rng {
            Some(rng) => SeededRng::seed_from_u64(rng.gen()),
            None => mtl_core::derive_rng(0, "mlm evaluation"),
        };
        Ok(Box::new(
            chunks
                .into_iter()
                .map(move |rows| self.masked(&rows, &mut draws)),
        ))
    }

    fn fingerprint(&self, feed: &mut dyn FnMut(&[u8])) {
        feed_text(
            feed,
            &format!(
                "mlm vocab {} mask {} special {:?} p {}",
                self.vocab, self.mask_id, self.special, self.probability
            ),
        );
        feed_tensor(feed, &self.ids);
    }
}
