//! `vkwhisper`: Whisper speech-to-text for CTranslate2 models.

mod args;
mod convert;
mod devices;
mod ggml;
mod listen;
mod models;
mod serve;
mod synth;
mod transcribe;
mod vad;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Whisper speech-to-text for CTranslate2 (faster-whisper) models, on any GPU (Vulkan) or CPU.
///
/// Examples:
///   vkwhisper transcribe samples/jfk.wav
///   vkwhisper transcribe talk.mp3 --model base --language de -f srt,json -o subs/
///   vkwhisper serve --model base --port 8000
///   vkwhisper models pull small
///   vkwhisper convert my-finetune/ my-finetune-ct2/ --quantization float16
#[derive(Parser)]
#[command(name = "vkwhisper", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe (or translate) audio files; segments stream to stdout.
    Transcribe(Box<args::TranscribeArgs>),
    /// List the Vulkan GPUs (and the CPU backend) that --device can choose, marking auto's pick.
    Devices,
    /// List, download and locate models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Live transcription from the microphone, stdin or a file: text appears as you speak.
    Listen(Box<listen::ListenArgs>),
    /// Serve OpenAI's audio API (and a web page) over HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Write a CTranslate2 model directory from a transformers Whisper checkpoint or another CTranslate2 model.
    Convert(convert::ConvertArgs),
    /// Write a model of a real Whisper shape with random weights (GPU checks).
    #[command(hide = true)]
    SynthModel(synth::SynthArgs),
    /// Write a model as a whisper.cpp model file (the device check's anchor).
    #[command(hide = true)]
    ExportGgml(ggml::ExportGgmlArgs),
}

fn main() -> ExitCode {
    // Before any thread exists: silence Mesa's device-select layer (the
    // library never touches the environment itself).
    vkwhisper::devices::quiet_device_select_layer();
    let cli = Cli::parse();
    // SIGINT, SIGTERM and SIGHUP (ctrlc's `termination` feature): remove the
    // temporary files of outputs still being written and a conversion's
    // temporary directory (a signal skips destructors), then exit as
    // interrupted programs do (130 for each of them). What a SIGKILL leaves
    // is removed by the next run writing the same output (atomic.rs,
    // convert.rs). The server and `listen` handle their own signals (a
    // graceful shutdown; finishing the transcript).
    if !matches!(cli.command, Command::Serve(_) | Command::Listen(_)) {
        let _ = ctrlc::set_handler(|| {
            vkwhisper::output::remove_pending_outputs();
            convert::remove_temp_dir();
            std::process::exit(130);
        });
    }
    let result = match cli.command {
        Command::Transcribe(a) => transcribe::run(*a),
        Command::Devices => devices::run(),
        Command::Models { command } => models::run(command),
        Command::Convert(a) => convert::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Listen(a) => listen::run(*a),
        Command::SynthModel(a) => synth::run(a),
        Command::ExportGgml(a) => ggml::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Print an error as one line: the error and its causes, outermost first.
/// A cause whose text the line already holds (library errors often include
/// their source in their message) is not repeated.
pub(crate) fn report_error(e: &anyhow::Error) {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.is_empty() {
            line = cause;
        } else if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    eprintln!("error: {line}");
}
