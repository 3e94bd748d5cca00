"""Training: data, collator, distillation, teachers, Trainer/TRL glue (installed as ``videopanda.train``)."""
