"""`crossrec finetune`: the item encoder learns the shop's co-purchases (pairs → head / LoRA / full
fine-tune → guard on a validation period → versioned folder beside the database → chosen encoder).

Modules: `pairs` (training pairs from the training period), `head` (a trainable network on frozen
base vectors), `transformer` (LoRA and full fine-tunes with sentence-transformers' trainer),
`tuned` (the head-mode encoder as a model `Encoder` loads), `measure` (content-only and pair recall),
`registry` (stored encoders and the chosen one), `run` (the command's orchestration).
"""
