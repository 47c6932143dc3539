// TensorBoard event files written from a run's JSONL logs, which stay the source of truth.
//
// Format (what TensorBoard reads, written here without TensorFlow or protobuf):
//   a file of TFRecords: u64 length (little endian), u32 masked CRC-32C of those 8 bytes,
//   `length` bytes of data, u32 masked CRC-32C of the data; masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
//   Each record is an Event protobuf: wall_time (1, double), step (2, int64), file_version (3,
//   string; "brain.Event:2" in the first record) or summary (5: Summary{ value (1): Value{ tag (1,
//   string), simple_value (2, float) } }).
// Scalars: every number of a train.jsonl "train" event under "train/<key>" (loss, lr, grad_norm,
// tokens_per_s, DPO's accuracy and margin, ...), and every eval.jsonl "eval" event's value under
// "eval/<suite>/[<scorer>_<mode>_<normalize>/]<split>/[<group>=<value>/]<metric>".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ethos {

struct Scalar {
  std::string tag;
  int64_t step = 0;
  double wall_time = 0;
  float value = 0;
};

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t masked_crc32c(const void* data, size_t n);

// The bytes of an event file holding `scalars` (one Event per scalar, after the version record).
std::string tensorboard_events(const std::vector<Scalar>& scalars, double wall_time);
// The scalars of a run directory's train.jsonl and eval.jsonl, in file order.
std::vector<Scalar> run_scalars(const std::string& run_dir);
// Rewrites <run_dir>/tensorboard/ from the run's JSONL: one new event file
// (events.out.tfevents.<ns>.ethos, written atomically), then the older ones are removed, so the
// directory always shows what the JSONL holds (a resumed run's rewound logs included).
// Returns the file written.
std::string write_tensorboard(const std::string& run_dir);

}  // namespace ethos
