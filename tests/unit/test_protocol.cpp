// The plug-in <-> engine protocol: every message round-trips; bad frames fail with a clear error
// and without trusting the lengths a hostile header declares.
#include <gtest/gtest.h>
#include <csignal>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/protocol/protocol.h"

using namespace dsk::proto;
using Bytes = std::vector<uint8_t>;

namespace {

Image ramp(int w, int h, int c, DType d) {
  Image im = Image::make(w, h, c, d);
  for (size_t i = 0; i < im.data.size(); ++i) im.data[i] = static_cast<uint8_t>(i * 7 + 3);
  return im;
}

Sampling some_sampling() {
  Sampling s;
  s.steps = 7;
  s.respacing = "ddim7";
  s.sampler = "ddpm";
  s.eta = 0.5;
  s.seed = 18446744073709551557ull;  // needs all 64 bits
  s.device = "cpu";
  s.classifier = "models/cls";
  s.class_label = 3;
  s.classifier_scale = 2.5;
  return s;
}

GenerateRequest some_generate() {
  GenerateRequest g;
  g.model = "default";
  g.sampling = some_sampling();
  g.sketch = ramp(5, 4, 4, DType::F32);
  g.width = 64;
  g.height = 48;
  g.sketch_scale = 1.5;
  g.sketch_guidance = {2.5, true, "models/sketch-features"};
  g.variants = 3;
  g.preview = true;
  return g;
}

std::vector<Message> every_message() {
  EditRequest edit;
  edit.model = "tests/data/models/adm-small";
  edit.sampling = some_sampling();
  edit.image = ramp(6, 5, 4, DType::F32);
  edit.mask = ramp(6, 5, 1, DType::U8);
  edit.sketch = ramp(6, 5, 4, DType::U16);
  edit.sketch_scale = 2;
  edit.variants = 8;
  edit.context_margin = 0.4;
  edit.feather = 3;
  edit.init_strength = 0.6;
  edit.refine_strength = 0.25;
  edit.refine_steps = 5;
  edit.harmonize = 0.5;
  edit.detail = "tiles";
  edit.preview = true;
  EditRequest edit_no_sketch = edit;
  edit_no_sketch.sketch = {};
  EditRequest edit_crop = edit;  // image and mask: a crop of the layer the sketch covers
  edit_crop.sketch = ramp(9, 7, 4, DType::F32);
  edit_crop.image_x = 2;
  edit_crop.image_y = 1;
  edit_crop.sketch_guidance = {1000, false, ""};
  InterpolateRequest interp;
  interp.generate = some_generate();
  interp.seed_a = 1;
  interp.seed_b = 1ull << 40;
  interp.frames = 9;
  interp.mode = "trig";
  ModelList list;
  list.models = {{"default", "editing-unet", "Default", "/usr/share/diffsketch/models/default", 64},
                 {"adm-small", "adm-unet", "fixture \"x\" ü", "/a b/adm-small", 32}};
  list.search_path = {"/x", "/y"};
  ProgressUpdate progress{3, 25, 0, ramp(8, 8, 3, DType::U8)};
  ProgressUpdate progress_plain{4, 25, 0, std::nullopt};
  ProgressUpdate queued{0, 0, 2, std::nullopt};
  Result result;
  result.images = {ramp(6, 5, 4, DType::F32), ramp(6, 5, 4, DType::F32)};
  result.seeds = {42, 43};
  result.warnings = {"the sketch is blank"};
  return {ModelsRequest{},
          edit,
          edit_no_sketch,
          edit_crop,
          some_generate(),
          interp,
          CancelRequest{},
          list,
          ModelList{},
          progress,
          progress_plain,
          queued,
          result,
          Result{},
          ErrorReply{ErrorKind::Input, "the mask selects nothing"},
          ErrorReply{ErrorKind::OutOfMemory, "out of memory"},
          ErrorReply{ErrorKind::Internal, "boom"},
          ErrorReply{ErrorKind::Cancelled, "cancelled"},
          ErrorReply{ErrorKind::Protocol, "bad"},
          HelloRequest{},
          HelloRequest{"s3cr3t-t0ken"},
          EngineHello{"0.1.0", "/usr/bin/diffsketch", 1764680000, 4242, 600}};
}

// A frame's JSON header replaced (payloads kept), for hand-made malformed frames.
Bytes frame_with_json(const std::string& text, uint16_t payloads = 0, uint16_t version = kProtocolVersion) {
  Bytes f(kFrameHeaderBytes);
  std::memcpy(f.data(), kMagic, 4);
  f[4] = version & 0xff;
  f[5] = version >> 8;
  f[6] = payloads & 0xff;
  f[7] = payloads >> 8;
  const uint32_t n = static_cast<uint32_t>(text.size());
  for (int i = 0; i < 4; ++i) f[8 + i] = (n >> (8 * i)) & 0xff;
  f.insert(f.end(), text.begin(), text.end());
  return f;
}

std::string error_of(const Bytes& frame, const Limits& limits = {}) {
  try {
    decode(frame, limits);
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Protocol, EveryMessageRoundTrips) {
  for (const Message& m : every_message()) {
    SCOPED_TRACE(message_type(m));
    const Bytes frame = encode(m);
    ASSERT_GE(frame.size(), kFrameHeaderBytes);
    EXPECT_EQ(0, std::memcmp(frame.data(), "DSKP", 4));
    EXPECT_EQ(decode(frame), m);
  }
}

TEST(Protocol, MessageTypesAreTheDocumentedNames) {
  EXPECT_STREQ(message_type(ModelsRequest{}), "models");
  EXPECT_STREQ(message_type(CancelRequest{}), "cancel");
  EXPECT_STREQ(message_type(HelloRequest{}), "hello");
  EXPECT_STREQ(message_type(EngineHello{}), "engine");
  EXPECT_STREQ(message_type(ErrorReply{}), "error");
  EXPECT_STREQ(error_kind_name(ErrorKind::OutOfMemory), "out-of-memory");
}

TEST(Protocol, StreamOfMessagesOverAPipeThenCleanEnd) {
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  const auto all = every_message();
  std::thread writer([&] {
    FdSink out(fds[1]);
    for (const auto& m : all) write_message(out, m);
    close(fds[1]);
  });
  FdSource in(fds[0]);
  for (const auto& m : all) {
    auto got = read_message(in);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, m);
  }
  EXPECT_FALSE(read_message(in).has_value());  // end of stream at a frame boundary
  writer.join();
  close(fds[0]);
}

TEST(Protocol, TruncatedFrameAtEveryLengthIsAnError) {
  const Bytes frame = encode(every_message()[1]);  // edit, with three payloads
  for (size_t n = 1; n < frame.size(); n += (n < 200 ? 1 : 37)) {
    const Bytes cut(frame.begin(), frame.begin() + n);
    EXPECT_NE(error_of(cut).find("truncated frame"), std::string::npos) << n << ": " << error_of(cut);
  }
  EXPECT_NE(error_of({}).find("truncated"), std::string::npos);
}

TEST(Protocol, TrailingBytesAreAnError) {
  Bytes frame = encode(CancelRequest{});
  frame.push_back(0);
  EXPECT_NE(error_of(frame).find("after the end of the frame"), std::string::npos);
}

TEST(Protocol, BadMagic) {
  Bytes frame = encode(ModelsRequest{});
  frame[0] = 'X';
  EXPECT_NE(error_of(frame).find("bad magic"), std::string::npos);
  const std::string http = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_NE(error_of(Bytes(http.begin(), http.end())).find("bad magic"), std::string::npos);
}

TEST(Protocol, VersionMismatchNamesBothVersions) {
  Bytes frame = encode(ModelsRequest{});
  frame[4] = 1;  // the first release's engine or plug-in
  try {
    decode(frame);
    FAIL() << "no error";
  } catch (const VersionMismatch& e) {
    EXPECT_EQ(e.peer_version(), 1);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("version 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("version " + std::to_string(kProtocolVersion)), std::string::npos) << msg;
    EXPECT_NE(msg.find("same release"), std::string::npos) << msg;
  }
}

// Frames that killed the server (issue 19): a "type" that is not a string (the error path read it
// as one), a field of an unforeseen kind, and a header nested deep enough to overflow the stack of
// anything recursive. Each is one ProtocolError.
TEST(Protocol, HostileHeadersAreProtocolErrors) {
  EXPECT_NE(error_of(frame_with_json(R"({"type":5,"payloads":[]})")).find("field 'type' has the wrong type"),
            std::string::npos)
      << error_of(frame_with_json(R"({"type":5,"payloads":[]})"));
  const std::string no_type_edit = R"({"type":[1],"payloads":[]})";
  EXPECT_FALSE(error_of(frame_with_json(no_type_edit)).empty());
  const std::string bad_model = R"({"type":"edit","model":{"a":1},"payloads":[]})";
  EXPECT_NE(error_of(frame_with_json(bad_model)).find("edit message: field 'model' has the wrong type"), std::string::npos)
      << error_of(frame_with_json(bad_model));
  const std::string descriptor = R"({"type":"models","payloads":[7]})";
  EXPECT_NE(error_of(frame_with_json(descriptor, 1)).find("payload descriptor 7"), std::string::npos)
      << error_of(frame_with_json(descriptor, 1));
  // Numbers out of a field's range were cast without a word (undefined behaviour for 1e20 -> int;
  // found by fuzz_protocol, tests/fuzz/corpus/protocol/regression-height-1e20.frame).
  const std::string huge_height = R"({"type":"models","payloads":[{"width":4,"height":92233720368547758084,"channels":1,"dtype":"u8"}]})";
  EXPECT_NE(error_of(frame_with_json(huge_height, 1)).find("needs integer width, height"), std::string::npos)
      << error_of(frame_with_json(huge_height, 1));
  const std::string fraction = R"({"type":"models","payloads":[{"width":4.5,"height":4,"channels":1,"dtype":"u8"}]})";
  EXPECT_NE(error_of(frame_with_json(fraction, 1)).find("needs integer width, height"), std::string::npos);
  const std::string error_step = R"({"type":"progress","step":4294967297,"total":2,"preview":null,"payloads":[]})";
  EXPECT_NE(error_of(frame_with_json(error_step)).find("field 'step' has the wrong type or is out of range"),
            std::string::npos)
      << error_of(frame_with_json(error_step));
  const std::string deep = R"({"type":"models","payloads":)" + std::string(400000, '[') + std::string(400000, ']') + "}";
  EXPECT_NE(error_of(frame_with_json(deep)).find("nested deeper than 16 levels"), std::string::npos);
  // Brackets inside strings are text, not nesting.
  const std::string text = R"({"type":"models","note":")" + std::string(100, '[') + R"(\"[","payloads":[]})";
  EXPECT_EQ(error_of(frame_with_json(text)), "(no error)");
}

TEST(Protocol, OversizedLengthsAreRefusedBeforeAllocating) {
  // Lengths near 4 GiB / 64 Ki in the fixed header: refused from the 12 header bytes alone.
  Bytes huge_json = frame_with_json("{}");
  huge_json[8] = huge_json[9] = huge_json[10] = huge_json[11] = 0xff;
  EXPECT_NE(error_of(huge_json).find("JSON header of 4294967295 bytes"), std::string::npos) << error_of(huge_json);
  Bytes many = frame_with_json("{}", 65535);
  EXPECT_NE(error_of(many).find("65535 payloads"), std::string::npos) << error_of(many);

  // A payload of 65536 x 65536 x 4 float = 64 GiB: over the per-payload limit.
  const std::string big = R"({"type":"progress","step":1,"total":2,"preview":0,
      "payloads":[{"width":65536,"height":65536,"channels":4,"dtype":"f32"}]})";
  EXPECT_NE(error_of(frame_with_json(big, 1)).find("over the limit"), std::string::npos) << error_of(frame_with_json(big, 1));
  const std::string wide = R"({"type":"progress","step":1,"total":2,"preview":0,
      "payloads":[{"width":2147483647,"height":1,"channels":1,"dtype":"u8"}]})";
  EXPECT_NE(error_of(frame_with_json(wide, 1)).find("each side must be in 1..65536"), std::string::npos);
  const std::string negative = R"({"type":"progress","step":1,"total":2,"preview":0,
      "payloads":[{"width":-4,"height":-4,"channels":1,"dtype":"u8"}]})";
  EXPECT_NE(error_of(frame_with_json(negative, 1)).find("each side"), std::string::npos);

  // Within the limits but never sent: payloads are read in 16 MiB chunks, so a frame that declares
  // 1 GiB and then ends costs one chunk and is reported as truncated.
  const std::string gib = R"({"type":"progress","step":1,"total":2,"preview":0,
      "payloads":[{"width":16384,"height":16384,"channels":4,"dtype":"u8"}]})";
  Bytes frame = frame_with_json(gib, 1);
  frame.resize(frame.size() + 1000);
  EXPECT_NE(error_of(frame).find("truncated frame"), std::string::npos) << error_of(frame);
  Limits tight;
  tight.max_payload_bytes = 1u << 20;
  EXPECT_NE(error_of(frame, tight).find("over the limit of 1048576 bytes"), std::string::npos);
}

TEST(Protocol, MalformedHeadersAreNamed) {
  EXPECT_NE(error_of(frame_with_json("not json")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(frame_with_json("[1,2]")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"launch","payloads":[]})")).find("unknown message type 'launch'"),
            std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"error","kind":"input","payloads":[]})")).find("field 'message' is missing"),
            std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"progress","step":"x","total":1,"payloads":[]})")).find("wrong type"),
            std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"progress","step":1,"total":1,"preview":3,"payloads":[]})"))
                .find("payload 3, which is missing"),
            std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"cancel","payloads":[]})", 1)).find("describes 0"), std::string::npos);
  // A payload that no field names, and one named twice.
  Bytes unused = frame_with_json(R"({"type":"cancel","payloads":[{"width":1,"height":1,"channels":1,"dtype":"u8"}]})", 1);
  unused.push_back(0);
  EXPECT_NE(error_of(unused).find("no field names"), std::string::npos) << error_of(unused);
  Bytes twice = frame_with_json(R"({"type":"result","images":[0,0],"seeds":[1,2],"warnings":[],
      "payloads":[{"width":1,"height":1,"channels":1,"dtype":"u8"}]})", 1);
  twice.push_back(0);
  EXPECT_NE(error_of(twice).find("already used"), std::string::npos) << error_of(twice);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"progress","step":1,"total":1,"preview":0,
      "payloads":[{"width":1,"height":1,"channels":1,"dtype":"f64"}]})", 1)).find("not one of u8, u16, f32"),
            std::string::npos);
  EXPECT_NE(error_of(frame_with_json(R"({"type":"generate","model":"m","sampling":{"steps":1,"respacing":"",
      "sampler":"ddim","eta":0,"seed":0,"device":"cpu","classifier":"","class":-1,"classifier_scale":1},"sketch":null,
      "width":8,"height":8,"sketch_scale":1,"variants":1,"preview":false,
      "sketch_guidance":{"scale":1,"mode":"fast","features":""},"payloads":[]})")).find("mode 'fast' is not cheap or exact"),
            std::string::npos);
}

// Fields added in version 2 are optional: a request without them has no crop and no sketch guidance.
TEST(Protocol, RequestsWithoutTheVersion2FieldsDecodeWithTheirDefaults) {
  const Message m = decode(frame_with_json(R"({"type":"generate","model":"m","sampling":{"steps":1,"respacing":"",
      "sampler":"ddim","eta":0,"seed":0,"device":"cpu","classifier":"","class":-1,"classifier_scale":1},"sketch":null,
      "width":8,"height":8,"sketch_scale":1,"variants":1,"preview":false,"payloads":[]})"));
  const auto* g = std::get_if<GenerateRequest>(&m);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->sketch_guidance, SketchGuidance{});
  EXPECT_EQ(g->sketch_guidance.scale, 0.0);
}

TEST(Protocol, WritingToAClosedPipeIsAProtocolError) {
  int fds[2];
  ASSERT_EQ(0, pipe(fds));
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  FdSink out(fds[1]);
  EXPECT_THROW(write_message(out, ModelsRequest{}), ProtocolError);
  close(fds[1]);
}

TEST(Protocol, AnImageWhoseBytesDoNotMatchItsShapeIsNotSent) {
  ProgressUpdate p{1, 2, 0, Image::make(4, 4, 3, DType::U8)};
  p.preview->data.pop_back();
  EXPECT_THROW(encode(p), ProtocolError);
}
