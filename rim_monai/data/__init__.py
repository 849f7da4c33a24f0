"""Data layer: readers (NIfTI, fastMRI / generic HDF5, DICOM, BART, HTC 2022), simulators, phantoms and writers.

Everything is a MONAI (dictionary) transform or dataset; see ``docs/data.md`` for the dict keys and examples.
"""

from rim_monai.data.file_utils import DataFileError, atomic_write, atomic_write_text
from rim_monai.data.keys import Keys
from rim_monai.data.bart import bart_to_channel_first, read_bart, write_bart
from rim_monai.data.dicom import DicomSliceDataset, LoadDICOMd, dicom_affine, dicom_slice_meta, read_dicom
from rim_monai.data.fastmri import (
    CenterCropToReconSized,
    FastMRISliceDataset,
    FastMRISubmissionWriter,
    center_crop,
    fastmri_slice,
    parse_ismrmrd_header,
    read_fastmri,
    write_fastmri_reconstruction,
)
from rim_monai.data.htc import bin_detectors, htc2022_operator, read_htc2022
from rim_monai.data.hdf5 import HDF5SliceDataset, LoDoPaBDataset, lodopab_files, read_hdf5
from rim_monai.data.intensity import (
    MU_WATER,
    AttenuationToHU,
    AttenuationToHUd,
    HUToAttenuation,
    HUToAttenuationd,
    PercentileScale,
    PercentileScaled,
)
from rim_monai.data.slicing import SliceDataset, SliceVolume, SliceVolumed, slice_affine, stack_slices
from rim_monai.data.writers import AtomicNibabelWriter, SaveNifti, SaveNiftid
from rim_monai.data.brain_phantom import brain_phantom
from rim_monai.data.phantoms import (
    EllipsePhantomDataset,
    ellipse_phantom,
    random_ellipses,
    shepp_logan,
    shepp_logan_ellipses,
)
from rim_monai.data.augment import RandIntensityScaled, physics_augmentations
from rim_monai.data.simulate_mri import SimulateKSpaced, smooth_phase
from rim_monai.data.simulate_ct import SimulateSinogramd, add_sinogram_noise, finer_ray_transform
from rim_monai.data.sensitivity import EstimateSensitivitiesd

# -- further data modules register their public names below (one import line each) --
from rim_monai.operators import MASK_FUNCTIONS  # the one mask registry, re-exported here for the data layer's users
from rim_monai.data.undersample import UndersampleKSpaced
from rim_monai.data.samples import make_mri_sample, write_fastmri_kspace
from rim_monai.data.seeding import SEED_STRIDE, SeededItems, item_seed
from rim_monai.data.datasets import RepeatDataset, concat_datasets
from rim_monai.data.scans import ScanFormat, find_scans, scan_files
from rim_monai.data.slicing import FitToGridd, rescale_slice_meta, zoom_affine
from rim_monai.data.phantoms import PhantomSliceDataset, phantom_to_hu
from rim_monai.data.hdf5 import check_sinograms, sinogram_files, sinogram_records
from rim_monai.data.nifti import read_nifti
from rim_monai.data.scan_errors import ON_ERROR_MODES, ScanError, ScanErrors, scan_errors
from rim_monai.data.protocol import DICOM_SCANS, NIFTI_SCANS, AcquisitionProtocol, reconstruction_dataset, training_dataset, validation_dataset
from rim_monai.data.ct_protocol import CT_IMAGE_SHAPE, CT_NUM_ANGLES, CT_PHOTONS, CT_PIXEL_MM, CTProtocol, ct_operator
from rim_monai.data.mri_protocol import MRIProtocol
from rim_monai.data.denoising_protocol import DenoisingProtocol
from rim_monai.data.mr_readers import read_mr_slices, read_mr_volume
from rim_monai.data.mri_acquisition import AcquisitionSampler, AcquisitionSettings, simulate_acquisition, varied_coil_maps
from rim_monai.data.mri_corpus import AcquisitionBatchSampler, MRICorpus, MRITrainingPatches, MRIValidationSlices
from rim_monai.data.ct_corpus import (CTAcquisitionSampler, CTAcquisitionSettings, CTCorpus, CTTrainingPatches,
                                   CTValidationSlices, read_ct_slices)
from rim_monai.data.legacy import (  # deprecated functional forms of the protocols' datasets
    ct_phantom_dataset,
    ct_reconstruction_dataset,
    ct_training_dataset,
    mri_reconstruction_dataset,
    mri_training_dataset,
)

__all__ = [
    "Keys",
    "read_mr_slices",
    "read_mr_volume",
    "AcquisitionSampler",
    "AcquisitionSettings",
    "simulate_acquisition",
    "varied_coil_maps",
    "AcquisitionBatchSampler",
    "MRICorpus",
    "CTCorpus",
    "CTAcquisitionSampler",
    "CTAcquisitionSettings",
    "CTTrainingPatches",
    "CTValidationSlices",
    "read_ct_slices",
    "MRITrainingPatches",
    "MRIValidationSlices",
    "read_htc2022",
    "htc2022_operator",
    "bin_detectors",
    "DataFileError",
    "atomic_write",
    "atomic_write_text",
    "bart_to_channel_first",
    "read_bart",
    "write_bart",
    "LoadDICOMd",
    "DicomSliceDataset",
    "dicom_affine",
    "dicom_slice_meta",
    "read_dicom",
    "CenterCropToReconSized",
    "FastMRISliceDataset",
    "FastMRISubmissionWriter",
    "center_crop",
    "fastmri_slice",
    "parse_ismrmrd_header",
    "read_fastmri",
    "write_fastmri_reconstruction",
    "HDF5SliceDataset",
    "LoDoPaBDataset",
    "lodopab_files",
    "read_hdf5",
    "MU_WATER",
    "AttenuationToHU",
    "AttenuationToHUd",
    "HUToAttenuation",
    "HUToAttenuationd",
    "PercentileScale",
    "PercentileScaled",
    "SliceDataset",
    "SliceVolume",
    "SliceVolumed",
    "slice_affine",
    "stack_slices",
    "AtomicNibabelWriter",
    "SaveNifti",
    "SaveNiftid",
    "EllipsePhantomDataset",
    "brain_phantom",
    "ellipse_phantom",
    "random_ellipses",
    "shepp_logan",
    "shepp_logan_ellipses",
    "RandIntensityScaled",
    "physics_augmentations",
    "SimulateKSpaced",
    "smooth_phase",
    "SimulateSinogramd",
    "add_sinogram_noise",
    "finer_ray_transform",
    "EstimateSensitivitiesd",
    "MASK_FUNCTIONS",
    "UndersampleKSpaced",
    "make_mri_sample",
    "write_fastmri_kspace",
    "SEED_STRIDE",
    "SeededItems",
    "item_seed",
    "RepeatDataset",
    "concat_datasets",
    "ScanFormat",
    "find_scans",
    "scan_files",
    "FitToGridd",
    "rescale_slice_meta",
    "zoom_affine",
    "PhantomSliceDataset",
    "phantom_to_hu",
    "check_sinograms",
    "sinogram_files",
    "sinogram_records",
    "read_nifti",
    "ON_ERROR_MODES",
    "ScanError",
    "ScanErrors",
    "scan_errors",
    "NIFTI_SCANS",
    "DICOM_SCANS",
    "AcquisitionProtocol",
    "reconstruction_dataset",
    "training_dataset",
    "validation_dataset",
    "CT_IMAGE_SHAPE",
    "CT_NUM_ANGLES",
    "CT_PHOTONS",
    "CT_PIXEL_MM",
    "CTProtocol",
    "ct_operator",
    "MRIProtocol",
    "DenoisingProtocol",
    "ct_phantom_dataset",
    "ct_reconstruction_dataset",
    "ct_training_dataset",
    "mri_reconstruction_dataset",
    "mri_training_dataset",
]
