// lite_runner: classify preprocessed images with a MindSpore Lite .ms model through the Lite C++ API.
//
// Built for aarch64 by build.sh (natively on an ARM board, cross-compiled on x86 and run under qemu-aarch64) and
// driven by scripts/run_arm_infer.sh, which preprocesses the images on the host exactly as infer.py does.
//
//   lite_runner --model M.ms --info
//       prints the model input shape: "input N C H W" (-1 for a dynamic dimension)
//   lite_runner --model M.ms --input X.f32 [--image_names F] [--labels_file F] [--top_k 5] [--threads 2]
//               [--logits OUT.f32]
//       X.f32: raw float32 NCHW images of the model's C x H x W, back to back (any count);
//       prints each image's name (a line of --image_names, else X.f32[i]) and its top-k in infer.py's format;
//       --logits writes the logits as raw float32 (images x classes), atomically.
// A wrong argument or file is one "error: ..." line on stderr and exit code 2.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"

namespace {

// A problem the user can fix: printed as one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char kUsage[] =
    "usage: lite_runner --model M.ms (--info | --input X.f32 [--image_names F] [--labels_file F] [--top_k K] "
    "[--threads N] [--logits OUT.f32])";

struct Options {
  std::string model, input, image_names, labels_file, logits;
  bool info = false;
  int top_k = 5, threads = 2;
};

int PositiveInt(const std::string &flag, const std::string &value) {
  try {
    size_t used = 0;
    int n = std::stoi(value, &used);
    if (used == value.size() && n > 0) return n;
  } catch (const std::exception &) {
  }
  throw UsageError(flag + " must be a positive integer, got '" + value + "'");
}

Options ParseArgs(int argc, char **argv) {
  Options opt;
  std::map<std::string, std::string *> text = {{"--model", &opt.model},
                                               {"--input", &opt.input},
                                               {"--image_names", &opt.image_names},
                                               {"--labels_file", &opt.labels_file},
                                               {"--logits", &opt.logits}};
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--info") {
      opt.info = true;
      continue;
    }
    bool known = text.count(flag) || flag == "--top_k" || flag == "--threads";
    if (!known) throw UsageError("unknown argument '" + flag + "'; " + kUsage);
    if (i + 1 >= argc) throw UsageError(flag + " needs a value; " + kUsage);
    std::string value = argv[++i];
    if (flag == "--top_k") {
      opt.top_k = PositiveInt(flag, value);
    } else if (flag == "--threads") {
      opt.threads = PositiveInt(flag, value);
    } else {
      *text[flag] = value;
    }
  }
  if (opt.model.empty() || (!opt.info && opt.input.empty())) throw UsageError(kUsage);
  return opt;
}

bool IsFile(const std::string &path) { return std::ifstream(path, std::ios::binary).good(); }

bool EndsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Non-empty lines, trimmed (the rule of src/deploy/labels.py::read_labels).
std::vector<std::string> ReadLines(const std::string &path, const std::string &what) {
  std::ifstream in(path);
  if (!in) throw UsageError(what + " not found: " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    const char *space = " \t\r\n\f\v";
    size_t first = line.find_first_not_of(space);
    if (first != std::string::npos) lines.push_back(line.substr(first, line.find_last_not_of(space) - first + 1));
  }
  return lines;
}

std::unique_ptr<mindspore::Model> LoadModel(const std::string &path, int threads) {
  if (!EndsWith(path, ".ms")) {
    throw UsageError(path + " is not a MindSpore Lite .ms model; export one with python export.py "
                            "--file_format MINDIR_LITE");
  }
  if (!IsFile(path)) throw UsageError("model file not found: " + path);
  auto context = std::make_shared<mindspore::Context>();
  context->SetThreadNum(threads);
  auto cpu = std::make_shared<mindspore::CPUDeviceInfo>();
  cpu->SetEnableFP16(false);  // float32 kernels: the logits must match the x86 runtime
  context->MutableDeviceInfo().push_back(cpu);
  auto model = std::make_unique<mindspore::Model>();
  mindspore::Status status = model->Build(path, mindspore::kMindIR_Lite, context);
  if (status != mindspore::kSuccess) {
    throw UsageError("MindSpore Lite cannot load " + path + " (" + status.ToString() +
                     "); is it a .ms file written by the Lite 2.0 converter?");
  }
  return model;
}

std::string ShapeText(const std::vector<int64_t> &shape, const char *sep) {
  std::ostringstream out;
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? sep : "") << shape[i];
  return out.str();
}

// The float32 images of X.f32, checked against one image of the model's C x H x W.
std::vector<float> ReadImages(const std::string &path, const std::vector<int64_t> &shape, int64_t *count) {
  if (shape.size() != 4 || shape[1] <= 0 || shape[2] <= 0 || shape[3] <= 0) {
    throw UsageError("the model input is " + ShapeText(shape, "x") + "; the runner needs a fixed N x C x H x W");
  }
  const int64_t per_image = shape[1] * shape[2] * shape[3];
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw UsageError("input file not found: " + path);
  const int64_t bytes = static_cast<int64_t>(in.tellg());
  const int64_t image_bytes = per_image * static_cast<int64_t>(sizeof(float));
  if (bytes == 0 || bytes % image_bytes != 0) {
    throw UsageError(path + " has " + std::to_string(bytes) + " bytes, not a whole number of " +
                     ShapeText({shape[1], shape[2], shape[3]}, "x") + " float32 images (" +
                     std::to_string(image_bytes) + " bytes each); preprocess the images at the model's input size");
  }
  *count = bytes / image_bytes;
  std::vector<float> data(static_cast<size_t>(bytes / sizeof(float)));
  in.seekg(0);
  in.read(reinterpret_cast<char *>(data.data()), bytes);
  return data;
}

// Logits of all images, in chunks of the model's batch (a dynamic batch runs one image at a time); the last
// chunk is padded with copies of its last image, as src/deploy/infer.py::predict does.
std::vector<float> Predict(mindspore::Model *model, const std::vector<float> &images, int64_t count,
                           int64_t *num_classes) {
  std::vector<mindspore::MSTensor> inputs = model->GetInputs();
  std::vector<int64_t> shape = inputs[0].Shape();
  if (shape[0] <= 0) {
    shape[0] = 1;
    if (model->Resize(inputs, {shape}) != mindspore::kSuccess) throw std::runtime_error("Resize to batch 1 failed");
    inputs = model->GetInputs();
  }
  const int64_t batch = shape[0], per_image = shape[1] * shape[2] * shape[3];
  std::vector<float> logits;
  for (int64_t start = 0; start < count; start += batch) {
    auto *dst = static_cast<float *>(inputs[0].MutableData());
    for (int64_t b = 0; b < batch; ++b) {
      const float *src = images.data() + std::min(start + b, count - 1) * per_image;
      std::copy(src, src + per_image, dst + b * per_image);
    }
    std::vector<mindspore::MSTensor> outputs;
    mindspore::Status status = model->Predict(inputs, &outputs);
    if (status != mindspore::kSuccess) throw std::runtime_error("Predict failed: " + status.ToString());
    *num_classes = outputs[0].ElementNum() / batch;
    const auto *out = static_cast<const float *>(outputs[0].Data().get());
    const int64_t used = std::min(batch, count - start);
    logits.insert(logits.end(), out, out + used * *num_classes);
  }
  return logits;
}

void WriteAtomically(const std::string &path, const std::vector<float> &values) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char *>(values.data()), values.size() * sizeof(float));
    if (!out) {
      std::remove(tmp.c_str());
      throw UsageError("cannot write " + path);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw UsageError("cannot write " + path);
  }
}

// The printout of src/deploy/infer.py::infer_main: the image name, then "  r. class    i  p=0.xxxx  NAME".
void PrintTopK(const std::vector<float> &logits, int64_t num_classes, const std::vector<std::string> &image_names,
               const std::vector<std::string> &labels, int top_k) {
  const int64_t k = std::min<int64_t>(top_k, num_classes);
  for (size_t image = 0; image < image_names.size(); ++image) {
    const float *row = logits.data() + image * num_classes;
    const float peak = *std::max_element(row, row + num_classes);
    std::vector<double> probs(num_classes);
    for (int64_t c = 0; c < num_classes; ++c) probs[c] = std::exp(static_cast<double>(row[c]) - peak);
    const double total = std::accumulate(probs.begin(), probs.end(), 0.0);
    std::vector<int64_t> order(num_classes);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return probs[a] > probs[b]; });
    std::printf("%s\n", image_names[image].c_str());
    for (int64_t rank = 0; rank < k; ++rank) {
      const int64_t c = order[rank];
      std::printf("  %lld. class %4lld  p=%.4f%s\n", static_cast<long long>(rank + 1), static_cast<long long>(c),
                  probs[c] / total, labels.empty() ? "" : ("  " + labels[c]).c_str());
    }
  }
}

int Run(const Options &opt) {
  std::unique_ptr<mindspore::Model> model = LoadModel(opt.model, opt.threads);
  std::vector<mindspore::MSTensor> inputs = model->GetInputs();
  if (inputs.size() != 1 || inputs[0].DataType() != mindspore::DataType::kNumberTypeFloat32) {
    throw UsageError(opt.model + " is not an image classifier with one float32 input");
  }
  if (opt.info) {
    std::printf("input %s\n", ShapeText(inputs[0].Shape(), " ").c_str());
    std::printf("classes %lld\n", static_cast<long long>(model->GetOutputs()[0].Shape().back()));
    return 0;
  }
  int64_t count = 0, num_classes = 0;
  std::vector<float> images = ReadImages(opt.input, inputs[0].Shape(), &count);
  std::vector<std::string> names;
  if (!opt.image_names.empty()) {
    names = ReadLines(opt.image_names, "image names file");
    if (static_cast<int64_t>(names.size()) != count) {
      throw UsageError(opt.image_names + " names " + std::to_string(names.size()) + " images but " + opt.input +
                       " holds " + std::to_string(count));
    }
  } else {
    for (int64_t i = 0; i < count; ++i) names.push_back(opt.input + "[" + std::to_string(i) + "]");
  }
  std::vector<std::string> labels;
  if (!opt.labels_file.empty()) labels = ReadLines(opt.labels_file, "labels file");
  std::vector<float> logits = Predict(model.get(), images, count, &num_classes);
  if (!labels.empty() && static_cast<int64_t>(labels.size()) != num_classes) {
    throw UsageError(opt.labels_file + " has " + std::to_string(labels.size()) + " names but the model has " +
                     std::to_string(num_classes) + " classes");
  }
  if (labels.empty()) {
    std::printf("note: printing class indices (%lld classes; pass --labels_file with one name per line)\n",
                static_cast<long long>(num_classes));
  }
  if (!opt.logits.empty()) WriteAtomically(opt.logits, logits);
  PrintTopK(logits, num_classes, names, labels, opt.top_k);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return Run(ParseArgs(argc, argv));
  } catch (const UsageError &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: MindSpore Lite failed: %s\n", e.what());
    return 1;
  }
}
