//! `vkwhisper`: Whisper speech-to-text for CTranslate2 models.

mod args;
mod convert;
mod devices;
mod models;
mod transcribe;
mod vad;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Whisper speech-to-text for CTranslate2 (faster-whisper) models, on any GPU (Vulkan) or CPU.
///
/// Examples:
///   vkwhisper transcribe samples/jfk.wav
///   vkwhisper transcribe talk.mp3 --model base --language de -f srt,json -o subs/
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
    /// Write a CTranslate2 model directory from a transformers Whisper checkpoint or another CTranslate2 model.
    Convert(convert::ConvertArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C: remove the temporary files of outputs still being written (a
    // signal skips destructors), then exit as interrupted programs do.
    let _ = ctrlc::set_handler(|| {
        vkw_writers::remove_pending_outputs();
        convert::remove_temp_dir();
        std::process::exit(130);
    });
    let result = match cli.command {
        Command::Transcribe(a) => transcribe::run(*a),
        Command::Devices => devices::run(),
        Command::Models { command } => models::run(command),
        Command::Convert(a) => convert::run(a),
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
