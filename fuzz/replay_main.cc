// Replays fuzz inputs through a harness without a fuzzer: every file named on
// the command line, and every file inside each directory named. A directory
// that does not exist is skipped (a harness may have no regressions yet); a
// crash or sanitizer report fails the run.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool replay_file(const std::filesystem::path &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
		return false;
	}
	std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
	return true;
}

int main(int argc, char **argv)
{
	namespace fs = std::filesystem;
	int replayed = 0;
	bool ok = true;
	for (int i = 1; i < argc; i++) {
		fs::path arg(argv[i]);
		std::error_code ec;
		if (fs::is_directory(arg, ec)) {
			for (const auto &entry : fs::directory_iterator(arg))
				if (entry.is_regular_file()) {
					ok = replay_file(entry.path()) && ok;
					replayed++;
				}
		} else if (fs::exists(arg, ec)) {
			ok = replay_file(arg) && ok;
			replayed++;
		}
	}
	std::printf("replayed %d inputs\n", replayed);
	if (replayed == 0) {
		std::fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	return ok ? 0 : 1;
}
