// The shipped default model (models/default) follows sketches: a line drawn through an empty
// region pulls the result's edges onto the line (issue: "prove it follows sketches").
#include <gtest/gtest.h>

#include <cstdlib>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/engine/engine.h"
#include "editing/metrics.h"
#include "numerics.h"

namespace {

// One engine for the file's tests: the models stay loaded from test to test, as in a server.
dsk::Engine& engine() {
  static dsk::Engine e;
  return e;
}

// DSK_TEST_DEFAULT_MODEL checks another folder (a training checkpoint's export) the same way.
std::string default_model() {
  const char* v = std::getenv("DSK_TEST_DEFAULT_MODEL");
  return v && *v ? v : DSK_SOURCE_DIR "/models/default";
}

// A smooth sky-like gradient: nothing in it for the model to continue into the hole.
cv::Mat empty_picture(int size) {
  cv::Mat img(size, size, CV_8UC3);
  for (int r = 0; r < size; ++r)
    for (int c = 0; c < size; ++c)
      img.at<cv::Vec3b>(r, c) = cv::Vec3b(cv::saturate_cast<uchar>(230 - r / 3), cv::saturate_cast<uchar>(170 - r / 4 + c / 8),
                                          cv::saturate_cast<uchar>(90 + r / 5));
  return img;
}

struct LineScores {
  double f1 = 0, recall = 0, blank_f1 = 0;
};

// Inpaints the empty square with the line sketch and with none (seeds 0..2), scoring the result's
// edges against the line.
LineScores line_scores(double guidance, double sketch_scale = 1.0) {
  const int size = 96;
  const cv::Mat image = empty_picture(size);
  cv::Mat mask = cv::Mat::zeros(size, size, CV_8U);
  cv::rectangle(mask, cv::Rect(24, 24, 48, 48), cv::Scalar(255), cv::FILLED);
  cv::Mat sketch(size, size, CV_8U, cv::Scalar(255));  // dark strokes on white paper
  cv::line(sketch, {28, 66}, {68, 30}, cv::Scalar(0), 2, cv::LINE_AA);
  cv::Mat line_map;  // the stroke map edge_f1 compares with: 1 on the line
  cv::threshold(sketch, line_map, 128, 1.0, cv::THRESH_BINARY_INV);
  line_map.convertTo(line_map, CV_32F);
  LineScores out;
  const int seeds = 3;
  for (int seed = 0; seed < seeds; ++seed) {
    dsk::EditRequest req;
    req.model = default_model();
    req.image = image;
    req.mask = mask;
    req.sampling.seed = seed;  // the edit's default sampler and steps (UniPC 12): what ships
    req.sketch = sketch;
    req.sketch_guidance.scale = guidance;
    req.sketch_scale = sketch_scale;
    const auto drawn = engine().edit(req).images.at(0);
    req.sketch = cv::Mat();
    req.sketch_guidance.scale = 0;
    const auto blank = engine().edit(req).images.at(0);
    if (const char* dir = std::getenv("DSK_TEST_SAVE"); dir && *dir) {  // for looking at the results
      const std::string stem = std::string(dir) + "/line-g" + std::to_string(int(guidance)) + "-c" +
                              std::to_string(int(sketch_scale)) + "-s" + std::to_string(seed);
      cv::imwrite(stem + "-sketch.png", drawn);
      cv::imwrite(stem + "-blank.png", blank);
    }
    const auto score = dsk::edit::edge_f1(drawn, line_map, mask);
    out.f1 += score.f1 / seeds;
    out.recall += score.recall / seeds;
    out.blank_f1 += dsk::edit::edge_f1(blank, line_map, mask).f1 / seeds;
  }
  std::cout << "guidance " << guidance << ", sketch scale " << sketch_scale << ": edge F1 with the line " << out.f1 << " (recall " << out.recall
            << "), with no sketch " << out.blank_f1 << "\n";
  return out;
}

}  // namespace

// At sketch strength 3 (classifier-free guidance on the sketch: `--sketch-scale 3`, the plug-in's
// sketch-strength) the line becomes an edge of the fill, which stays flat without a sketch. (At
// strength 1 the model draws the line too faintly for the edge detector; cheap sketch guidance
// makes blobs along it rather than an edge: both measured in the model card.)
TEST(DefaultModel, ALineThroughAnEmptyRegionPullsTheEdgesOntoIt) {
  const auto s = line_scores(/*guidance=*/0, /*sketch_scale=*/3);
  // A quality threshold, not a comparison with a reference: also recorded (as the share of the line
  // that did not become an edge) so that the portability matrix shows how close each level comes.
  dsk::test::record("default-model/line-missed (1 - edge recall)", 1 - s.recall, 0.5);
  EXPECT_GT(s.recall, 0.5) << "most of the line should become an edge of the result";
  EXPECT_GT(s.f1, s.blank_f1 + 0.2) << "the line must matter";
}
