//! Semantic checks of the header fields readers trust: every enumerated field holds a value
//! FORMAT.md defines, every probability is in (0, 1], and the ring word keeps its invariant.
//! [`HeaderView::validate`] checks the geometry; [`HeaderView::validate_fields`] the rest.

use crate::header::{
    BREAKER_HIGH_WATER, BREAKER_LOW_WATER, BREAKER_STATE, CLASS_TABLE, CLASS_TABLE_ENTRIES,
    CREATION_FLAGS, DECISION, DEGRADE_FACTOR, DEGRADE_FLOOR, DURABLE_POSITION, DURABLE_VALID,
    FLAG_MULTI_PRODUCER, FLAG_TSC_CLOCK, FLUSH_MODE, OVERFLOW_POLICY, RING_WORD, STATE,
};
use crate::{FormatError, Geometry, HeaderView, KindField, unpack_positions};

/// Checks the ring word invariant `tail - head <= capacity` (wrapping u32 arithmetic).
///
/// ```
/// use ringlat_format::{check_ring_word, pack_positions};
/// assert_eq!(check_ring_word(pack_positions(u32::MAX, 3), 8), Ok((u32::MAX, 3)));
/// assert!(check_ring_word(pack_positions(0, 9), 8).is_err());
/// ```
pub fn check_ring_word(word: u64, capacity: u32) -> Result<(u32, u32), FormatError> {
    let (head, tail) = unpack_positions(word);
    let fill = tail.wrapping_sub(head);
    if fill > capacity {
        return Err(FormatError::BadRingWord {
            head,
            tail,
            fill,
            capacity,
        });
    }
    Ok((head, tail))
}

/// True when `bits` is the f64 of a probability in (0, 1].
///
/// ```
/// assert!(ringlat_format::is_probability(0.25f64.to_bits()));
/// assert!(!ringlat_format::is_probability(0f64.to_bits()));
/// assert!(!ringlat_format::is_probability(f64::NAN.to_bits()));
/// ```
pub fn is_probability(bits: u64) -> bool {
    let p = f64::from_bits(bits);
    p > 0.0 && p <= 1.0
}

fn enumerated(
    field: &str,
    found: u64,
    allowed_values: &[u64],
    allowed: &'static str,
) -> Result<(), FormatError> {
    if allowed_values.contains(&found) {
        Ok(())
    } else {
        Err(FormatError::BadField {
            field: field.to_string(),
            found,
            allowed,
        })
    }
}

impl HeaderView<'_> {
    /// Checks every field a reader trusts beyond the geometry (run it after
    /// [`HeaderView::validate`]): enumerated fields, flag bits, the class table, the kind
    /// entries of configured kinds, the durable position's high bits and the ring word.
    ///
    /// ```
    /// use ringlat_format::{DeltaUnit, Geometry, HeaderView, OVERFLOW_POLICY};
    /// let geometry = Geometry::for_capacity(8).unwrap();
    /// let mut bytes = vec![0u8; 40_960];
    /// geometry.write_fixed_fields(&mut bytes, DeltaUnit::Micros, 0);
    /// assert!(HeaderView::new(&bytes).validate_fields(&geometry).is_ok());
    /// bytes[OVERFLOW_POLICY] = 7;
    /// assert!(HeaderView::new(&bytes).validate_fields(&geometry).is_err());
    /// ```
    pub fn validate_fields(&self, geometry: &Geometry) -> Result<(), FormatError> {
        let flags = u64::from(self.u32_at(CREATION_FLAGS));
        if flags & !u64::from(FLAG_MULTI_PRODUCER | FLAG_TSC_CLOCK) != 0 {
            return Err(FormatError::BadField {
                field: "flags".into(),
                found: flags,
                allowed: "bits 0 (multi-producer) and 1 (TSC clock) only",
            });
        }
        let checks: [(&str, u64, &'static str); 5] = [
            (
                "overflow_policy",
                self.u8_at(OVERFLOW_POLICY).into(),
                "0 = break, 1 = overwrite",
            ),
            ("state", self.u32_at(STATE).into(), "0 = open, 1 = closed"),
            (
                "breaker_state",
                self.u32_at(BREAKER_STATE).into(),
                "0 = closed, 1 = open",
            ),
            (
                "decision",
                self.u32_at(DECISION).into(),
                "0 = random, 1 = trace id",
            ),
            (
                "flush_mode",
                self.u32_at(FLUSH_MODE).into(),
                "0 = async, 1 = every interval",
            ),
        ];
        for (field, found, allowed) in checks {
            enumerated(field, found, &[0, 1], allowed)?;
        }
        let durable = self.u64_at(DURABLE_POSITION);
        if durable & !(DURABLE_VALID | 0xFFFF_FFFF) != 0 {
            return Err(FormatError::BadField {
                field: "durable_position".into(),
                found: durable,
                allowed: "bits 33..64 zero (bit 32 = valid, bits 0..32 = position)",
            });
        }
        let capacity = u64::from(geometry.capacity);
        for field in [
            ("breaker_low_water", BREAKER_LOW_WATER),
            ("breaker_high_water", BREAKER_HIGH_WATER),
        ] {
            let found = u64::from(self.u32_at(field.1));
            if found > capacity {
                return Err(FormatError::BadField {
                    field: field.0.into(),
                    found,
                    allowed: "at most the capacity",
                });
            }
        }
        for (field, offset) in [
            ("degrade_factor", DEGRADE_FACTOR),
            ("degrade_floor", DEGRADE_FLOOR),
        ] {
            let bits = self.u64_at(offset);
            // 0 is what a file without load degradation settings holds.
            if bits != 0 && !is_probability(bits) {
                return Err(FormatError::BadProbability {
                    field: field.into(),
                    bits,
                    allowed: "0 or a rate in (0, 1]",
                });
            }
        }
        self.validate_classes()?;
        self.validate_kinds()?;
        check_ring_word(self.u64_at(RING_WORD), geometry.capacity)?;
        Ok(())
    }

    /// Class 0 is exactly 1.0; every other entry is 0 (unused) or in (0, 1].
    fn validate_classes(&self) -> Result<(), FormatError> {
        let class0 = self.u64_at(CLASS_TABLE);
        if class0 != 1.0f64.to_bits() {
            return Err(FormatError::BadProbability {
                field: "class_table[0]".into(),
                bits: class0,
                allowed: "exactly 1",
            });
        }
        for class in 1..CLASS_TABLE_ENTRIES {
            let bits = self.u64_at(CLASS_TABLE + 8 * class);
            if bits != 0 && !is_probability(bits) {
                return Err(FormatError::BadProbability {
                    field: format!("class_table[{class}]"),
                    bits,
                    allowed: "0 (unused) or in (0, 1]",
                });
            }
        }
        Ok(())
    }

    /// Kind flags use bit 0 only; a configured kind has a base rate in (0, 1] and a current
    /// class that is in use.
    fn validate_kinds(&self) -> Result<(), FormatError> {
        for kind in 0..=255u8 {
            let flags = self.u32_at(KindField::Flags.offset(kind));
            if flags & !KindField::CONFIGURED != 0 {
                return Err(FormatError::BadField {
                    field: format!("kind_table[{kind}].kind_flags"),
                    found: flags.into(),
                    allowed: "bit 0 only (configured)",
                });
            }
            if flags & KindField::CONFIGURED == 0 {
                continue;
            }
            let base = self.u64_at(KindField::BaseProbability.offset(kind));
            if !is_probability(base) {
                return Err(FormatError::BadProbability {
                    field: format!("kind_table[{kind}].base_probability"),
                    bits: base,
                    allowed: "in (0, 1]",
                });
            }
            let class = self.u32_at(KindField::CurrentClass.offset(kind));
            let in_use = usize::try_from(class)
                .ok()
                .filter(|c| *c < CLASS_TABLE_ENTRIES)
                .is_some_and(|c| is_probability(self.u64_at(CLASS_TABLE + 8 * c)));
            if !in_use {
                return Err(FormatError::BadField {
                    field: format!("kind_table[{kind}].current_class"),
                    found: class.into(),
                    allowed: "a class whose class_table entry is in (0, 1]",
                });
            }
        }
        Ok(())
    }
}
